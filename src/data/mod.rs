//! Datasets: Fashion-MNIST IDX, CIFAR-10/100 binary; class-balanced splits; augmentation.
