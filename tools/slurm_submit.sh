#!/usr/bin/env bash
# Submits a study emitted with `--emit_commands DIR` to SLURM as three dependent jobs:
#   DIR/prepare.sh (when present; e.g. the stand-in's pre-training),
#   a job array of tools/slurm_fold.sbatch, one task per line of DIR/commands.txt,
#   DIR/summarize.sh (summaries and tables), each after the previous ended well (afterok).
# Usage: tools/slurm_submit.sh DIR [sbatch options for every job, e.g. --partition=gpu]
#   MAX_PARALLEL=K   at most K array tasks at once (default: no limit)
#   DRY_RUN=1        print the sbatch commands, submit nothing
#   LOCAL=1          no SLURM: run the same three steps on this machine, JOBS array
#                    tasks at once (default 2), each through tools/slurm_fold.sbatch with
#                    SLURM_ARRAY_TASK_ID set, as SLURM would
set -euo pipefail
dir=${1:?usage: tools/slurm_submit.sh DIR [sbatch options]}
shift
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
[ -f "$dir/commands.txt" ] || { echo "error: no $dir/commands.txt (run with --emit_commands $dir first)" >&2; exit 2; }
n=$(grep -c . "$dir/commands.txt")
[ "$n" -gt 0 ] || { echo "error: $dir/commands.txt is empty" >&2; exit 2; }

if [ "${LOCAL:-0}" = 1 ]; then
  [ -f "$dir/prepare.sh" ] && bash "$dir/prepare.sh"
  seq 1 "$n" | xargs -P "${JOBS:-2}" -I{} env SLURM_ARRAY_TASK_ID={} \
      bash "$here/slurm_fold.sbatch" "$dir"
  exec bash "$dir/summarize.sh"
fi

submit() {  # submit NAME SBATCH_ARGS...: prints the job id (a dry run: <NAME>)
  local name=$1
  shift
  if [ "${DRY_RUN:-0}" = 1 ]; then
    echo "sbatch --parsable $*" >&2
    echo "<$name>"
  else
    sbatch --parsable "$@"
  fi
}
dependency=()
if [ -f "$dir/prepare.sh" ]; then
  prep=$(submit prepare --job-name=asr-ser-prepare --output="$dir/prepare-%j.out" "$@" "$dir/prepare.sh")
  dependency=(--dependency="afterok:$prep")
fi
array=$(submit array --array="1-$n${MAX_PARALLEL:+%$MAX_PARALLEL}" --output="$dir/fold-%A_%a.out" \
        "${dependency[@]}" "$@" "$here/slurm_fold.sbatch" "$dir")
summary=$(submit summarize --job-name=asr-ser-summarize --dependency="afterok:$array" \
          --output="$dir/summarize-%j.out" "$@" "$dir/summarize.sh")
echo "[slurm_submit] $n fold tasks: array job $array; summary job $summary (after the array)"
