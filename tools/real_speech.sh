#!/usr/bin/env bash
# The "Real speech (RAVDESS)" tables: every SER recipe's CPU YAML on RAVDESS with
# EmoBox's speaker-independent folds (emobox6), 4 classes and 8 classes, through the
# fold runner; the joint_asr_ser runs also go through the 7-condition MUSAN matrix.
#
#   bash tools/real_speech.sh /path/to/RAVDESS_speech
#
# Needs the CPU stand-in encoder (results/quickstart/pretrain_ctc/pretrained, made by
# tools/demo.sh) and the synthetic MUSAN (data/synthetic/musan, idem). Environment
# (defaults: the README's tables, except that there cornn and e_transformer ran fold 1
# only, and 8 classes 3 epochs, for CPU time):
# CLASSES ("4 8"), FOLDS_4 / FOLDS_8 (fold ids: 1,2 / 1), EPOCHS_SHORT (cornn and
# e_transformer, 4 classes: 12; their YAMLs say 250 and 50), EPOCHS_8 (cornn and
# e_transformer, 8 classes: 6), JOINT_EPOCHS_8 (joint and SER baseline, 8 classes: 3;
# YAML: 6), FOLDS_COATT (asr_fusion_coattention's acoustic-only and proposed models,
# 4 classes, their YAMLs' 4 epochs: 1), LANES (runs at once: 2, one thread each).
# Results: results/ravdess/<model>_<classes>class/summary.md. A rerun skips finished folds.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
RAVDESS=${1:?usage: tools/real_speech.sh /path/to/RAVDESS_speech}
FOLDS_4=${FOLDS_4:-1,2}
FOLDS_8=${FOLDS_8:-1}
FOLDS_COATT=${FOLDS_COATT:-1}
EPOCHS_SHORT=${EPOCHS_SHORT:-12}
EPOCHS_8=${EPOCHS_8:-6}
JOINT_EPOCHS_8=${JOINT_EPOCHS_8:-3}
CLASSES=${CLASSES:-4 8}
LANES=${LANES:-2}
STANDIN=results/quickstart/pretrain_ctc/pretrained
MUSAN=data/synthetic/musan
NOISE="--musan_folder=$MUSAN --test_conditions=[clean,noise_15,noise_5,music_15,music_5,babble_15,babble_5]"
EIGHT="--emotions=[ang,cal,dis,fea,hap,neu,sad,sur]"
# shellcheck disable=SC1091
source tools/setup_env.sh
for path in "$STANDIN" "$MUSAN"; do
    [ -e "$path" ] || { echo "error: $path missing: run bash tools/demo.sh first" >&2; exit 2; }
done

run() {  # name classes folds script yaml [overrides]
    local name=$1 classes=$2 folds=$3 script=$4 yaml=$5
    shift 5
    OMP_NUM_THREADS=1 python -m speechbrain_ext.fold_runner "$script" "$yaml" \
        --folds emobox6 --fold_ids "$folds" --cv_folder "results/ravdess/${name}_${classes}" \
        --corpus=ravdess --data_folder="$RAVDESS" "$@" \
        > "results/ravdess/${name}_${classes}.log" 2>&1 \
        && echo "[real_speech] ${name}_${classes} done" \
        || echo "[real_speech] ${name}_${classes} FAILED: see results/ravdess/${name}_${classes}.log"
}
J=recipes/joint_asr_ser
C=recipes/asr_fusion_coattention
jobs_list=(
    "joint 4class $FOLDS_4 $J/train_joint.py $J/hparams/joint_crnn.yaml --pretrained_ctc_folder=$STANDIN $NOISE"
    "ser 4class $FOLDS_4 $J/train_ser.py $J/hparams/ser_crnn.yaml --pretrained_ctc_folder=$STANDIN $NOISE"
    "e_transformer 4class $FOLDS_4 recipes/e_transformer/train.py recipes/e_transformer/hparams/e_transformer.yaml --number_of_epochs=$EPOCHS_SHORT"
    "cornn 4class $FOLDS_4 recipes/cornn/train.py recipes/cornn/hparams/cornn.yaml --number_of_epochs=$EPOCHS_SHORT"
    "e_transformer 8class $FOLDS_8 recipes/e_transformer/train.py recipes/e_transformer/hparams/e_transformer.yaml --number_of_epochs=$EPOCHS_8 $EIGHT"
    "cornn 8class $FOLDS_8 recipes/cornn/train.py recipes/cornn/hparams/cornn.yaml --number_of_epochs=$EPOCHS_8 $EIGHT"
    "joint 8class $FOLDS_8 $J/train_joint.py $J/hparams/joint_crnn.yaml --pretrained_ctc_folder=$STANDIN --number_of_epochs=$JOINT_EPOCHS_8 $EIGHT"
    "ser 8class $FOLDS_8 $J/train_ser.py $J/hparams/ser_crnn.yaml --pretrained_ctc_folder=$STANDIN --number_of_epochs=$JOINT_EPOCHS_8 $EIGHT"
    "coattention_acoustic 4class $FOLDS_COATT $C/train.py $C/hparams/acoustic_crnn.yaml"
    "coattention_full_hierarchical 4class $FOLDS_COATT $C/train.py $C/hparams/full_hierarchical_crnn.yaml --pretrained_ctc_folder=$STANDIN"
)
mkdir -p results/ravdess
start=$SECONDS
for job in "${jobs_list[@]}"; do
    read -r _ classes _ <<< "$job"
    [[ " $CLASSES " == *" ${classes%class} "* ]] || continue
    while [ "$(jobs -rp | wc -l)" -ge "$LANES" ]; do wait -n; done
    # shellcheck disable=SC2086
    run $job &
done
wait
echo "[real_speech] finished in $((SECONDS - start)) s"
for summary in results/ravdess/*/summary.md; do echo "== $summary"; head -20 "$summary"; done
