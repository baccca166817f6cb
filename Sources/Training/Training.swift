// Training: recipes, stages, trainer, checkpoints (issue 4).
