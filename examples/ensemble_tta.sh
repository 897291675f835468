#!/usr/bin/env bash
# Train five SimpleCNNs on digits with different seeds, then test their ensemble without and with
# test-time augmentation. Runs in a few minutes on a laptop CPU; every file goes under runs/ensemble/.
set -euo pipefail
EPOCHS="${EPOCHS:-5}"
OUT="${OUT:-runs/ensemble}"
QUIET=(--trainer.enable_progress_bar false --trainer.enable_model_summary false)

for seed in 0 1 2 3 4; do
  lightning-cnn fit --seed_everything "$seed" --trainer.max_epochs "$EPOCHS" \
    --model.channels '[16, 32]' --checkpoint.dirpath "$OUT/seed$seed" "${QUIET[@]}"
done

# Member 0 is the module under test (--ckpt_path); the other four are loaded by the callback.
OTHERS="[$OUT/seed1/best.ckpt, $OUT/seed2/best.ckpt, $OUT/seed3/best.ckpt, $OUT/seed4/best.ckpt]"

echo "== ensemble, no TTA =="
lightning-cnn test --ckpt_path "$OUT/seed0/best.ckpt" "${QUIET[@]}" \
  --trainer.callbacks+=lightning_cnn.callbacks.ensemble.EnsembleEvaluation \
  --trainer.callbacks.checkpoints="$OTHERS"

echo "== ensemble with TTA (identity + four 1-pixel shifts per member), and TTA of member 0 alone =="
lightning-cnn test --ckpt_path "$OUT/seed0/best.ckpt" "${QUIET[@]}" \
  --trainer.callbacks+=lightning_cnn.callbacks.ensemble.EnsembleEvaluation \
  --trainer.callbacks.checkpoints="$OTHERS" \
  --trainer.callbacks.views='[shifts]' \
  --trainer.callbacks+=lightning_cnn.callbacks.tta.TestTimeAugmentation \
  --trainer.callbacks.views='[shifts]'
