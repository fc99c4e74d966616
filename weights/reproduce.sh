#!/usr/bin/env bash
# Rebuild the sample data, the release training set (not committed), the shipped weights and every number and
# picture in README.md, docs/results.md and weights/MODEL_CARD.md. About 30-45 minutes on 2 CPU cores (20 epochs a model):
# bash weights/reproduce.sh
set -euo pipefail
cd "$(dirname "$0")/.."
export PYTHONPATH=.

python -m perfex.data.synth perfex --clips 360 --seed 1 --spread 2.5 --min-frames 150 --max-frames 300 --out data/train.csv.gz
python -m perfex.data.synth perfex --clips 80 --seed 2 --spread 2.5 --min-frames 150 --max-frames 300 --id-start 10000 --out data/user_study.csv.gz
python -m perfex.data.synth perfex --clips 36 --seed 3 --spread 2.5 --min-frames 150 --max-frames 459 --id-start 20000 --no-labels \
    --extra-lengths 20,35,900,1500 --out data/deploy.csv.gz
python -m perfex.data.synth openface --clips 6 --seed 4 --spread 2.5 --min-frames 150 --max-frames 300 --out data/openface_deploy \
    --labels-out data/openface_labels.csv

# the release training set: 3,000 clips of 1,000 other people (regenerated here with a fixed seed, never committed)
python -m perfex.data.synth perfex --clips 3000 --seed 5 --spread 2.5 --min-frames 150 --max-frames 300 --id-start 30000 \
    --out runs/release-data/train3000.csv.gz

# every registered model with scripts, as "name script_prefix" lines (models/registry.py)
mapfile -t registered < <(python -c 'from models.registry import families, script_prefix
for name in families(): print(name, script_prefix(name))')
for entry in "${registered[@]}"; do
    read -r model script <<< "$entry"
    rm -rf "runs/$model-release" "docs/results/$model" "docs/results/$model-user-study"
    python "${script}_train.py" --data runs/release-data/train3000.csv.gz --out "runs/$model-release" --seed 0 --epochs 20 \
        --no-progress
    cp "runs/$model-release/best.safetensors" "weights/$model.safetensors"
    cp "runs/$model-release/best.json" "weights/$model.json"
    cp "runs/$model-release/training_curves.png" "docs/${model}_training_curves.png"
    # held-out test split of the training data (source videos never seen in training)
    python "${script}_test.py" --weights "weights/$model.safetensors" --out "docs/results/$model" --no-progress
    # the user-study set: other people entirely
    python "${script}_test.py" --weights "weights/$model.safetensors" --data data/user_study.csv.gz --subset all \
        --out "docs/results/$model-user-study" --no-progress
    cp "docs/results/$model/confusion_matrices.png" "docs/${model}_confusion_matrices.png"
    cp "docs/results/$model/reliability.png" "docs/${model}_reliability.png"
done

# "Why did it predict that?": the data, one clip, the whole model
rm -rf docs/explain outputs/explain outputs/cnn-importance
python au_analysis.py --data data/train.csv.gz --out docs/explain --bootstrap 500 --force
python attn_deploy.py --out outputs/explain/traits.csv --explain outputs/explain --explain-plots 1 --force --no-progress
cp outputs/explain/clip_*.png docs/explain/
python 1dcnn_test.py --importance --bootstrap 200 --out outputs/cnn-importance --no-progress
cp outputs/cnn-importance/importance.png docs/explain/importance.png
