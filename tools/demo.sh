#!/usr/bin/env bash
# Quick start on the embedded synthetic corpus: set up, generate the corpora,
# then run the SER baseline through the fold runner (IEMOCAP prep, session5
# folds, training with model selection on validation, test, summary table).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
start=$SECONDS
# shellcheck disable=SC1091
source tools/setup_env.sh
echo "[demo] setup done in $((SECONDS - start)) s"

python -m data_prep.synthetic --out data/synthetic --size demo
# Two of the five leave-one-session-out folds keep the demo within a few CPU
# minutes; drop --fold_ids to run all five.
python -m speechbrain_ext.cv recipes/joint_asr_ser/train_ser.py \
    recipes/joint_asr_ser/hparams/ser_crnn.yaml \
    --folds session5 --fold_ids "${FOLD_IDS:-1,2}" \
    --cv_folder results/quickstart/ser_crnn_session5 \
    --data_folder=data/synthetic/IEMOCAP_full_release
echo "[demo] finished in $((SECONDS - start)) s"
