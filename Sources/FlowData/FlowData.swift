// FlowData: image and flow files, datasets, augmentation, loader.
