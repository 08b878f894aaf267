"""Neural building blocks shared by the recipes."""
