// Losses: photometric, occlusion, smoothness, distillation.
