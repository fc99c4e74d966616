#!/usr/bin/env bash
# Rebuild the sample data, the shipped weights and every number in README.md and weights/MODEL_CARD.md.
# About 15-25 minutes on 2 CPU cores. Run from anywhere: bash weights/reproduce.sh
set -euo pipefail
cd "$(dirname "$0")/.."
export PYTHONPATH=.

python -m perfex.synth perfex --clips 360 --seed 1 --spread 2.5 --min-frames 150 --max-frames 300 --out data/train.csv.gz
python -m perfex.synth perfex --clips 80 --seed 2 --spread 2.5 --min-frames 150 --max-frames 300 --id-start 10000 --out data/user_study.csv.gz
python -m perfex.synth perfex --clips 36 --seed 3 --spread 2.5 --min-frames 150 --max-frames 459 --id-start 20000 --no-labels \
    --extra-lengths 20,35,900,1500 --out data/deploy.csv.gz
python -m perfex.synth openface --clips 6 --seed 4 --spread 2.5 --min-frames 150 --max-frames 300 --out data/openface_deploy \
    --labels-out data/openface_labels.csv

for model in cnn attn; do
    script=$([ "$model" = cnn ] && echo 1dcnn || echo attn)
    rm -rf "runs/$model-release" "docs/results/$model" "docs/results/$model-user-study"
    python "${script}_train.py" --data data/train.csv.gz --out "runs/$model-release" --seed 0 --no-progress
    cp "runs/$model-release/best.safetensors" "weights/$model.safetensors"
    cp "runs/$model-release/best.json" "weights/$model.json"
    cp "runs/$model-release/training_curves.png" "docs/${model}_training_curves.png"
    # held-out test split of the training data (source videos never seen in training)
    python "${script}_test.py" --weights "weights/$model.safetensors" --out "docs/results/$model" --no-progress
    # the user-study set: other people entirely
    python "${script}_test.py" --weights "weights/$model.safetensors" --data data/user_study.csv.gz --subset all \
        --out "docs/results/$model-user-study" --no-progress
    cp "docs/results/$model/confusion_matrices.png" "docs/${model}_confusion_matrices.png"
done
