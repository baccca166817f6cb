// swift-tools-version:6.0
// mdflow: unsupervised optical flow by reliable mutual knowledge distillation (MDFlow), on the CPU.
import PackageDescription

let package = Package(
    name: "mdflow",
    platforms: [.macOS(.v13)],
    products: [
        .executable(name: "mdflow", targets: ["mdflow"]),
        .executable(name: "mdflow-fuzz", targets: ["mdflow-fuzz"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/jpsim/Yams", from: "6.0.0"),
        .package(url: "https://github.com/weichsel/ZIPFoundation", from: "0.9.19"),
    ],
    targets: [
        // System OpenBLAS through pkg-config; only `Tensor` imports it.
        .systemLibrary(name: "COpenBLAS", pkgConfig: "openblas", providers: [.apt(["libopenblas-dev"])]),
        // C only: PNG/JPEG decode and encode behind setjmp, malloc tuning, CRC-32 (zlib).
        .target(name: "CSupport", linkerSettings: [.linkedLibrary("png16"), .linkedLibrary("jpeg"), .linkedLibrary("z")]),
        // C only: the convolution, Winograd, correlation, warp and activation kernels (AVX-512 / AVX2
        // with portable loops beside them), the worker pool, glibc heap policy.
        .target(name: "CKernels", linkerSettings: [.linkedLibrary("m")]),
        // System MPI (Open MPI from Debian) through pkg-config; only `DataParallel` imports it.
        .systemLibrary(name: "CMPI", pkgConfig: "mpi-c", providers: [.apt(["libopenmpi-dev"])]),
        .target(name: "Tensor", dependencies: ["COpenBLAS", "CKernels"]),
        .target(name: "NN", dependencies: ["Tensor", .product(name: "ZIPFoundation", package: "ZIPFoundation")]),
        .target(name: "FlowNets", dependencies: ["Tensor", "NN"]),
        .target(name: "FlowData", dependencies: ["Tensor", "CSupport"]),
        .target(name: "Losses", dependencies: ["Tensor"]),
        .target(name: "Training", dependencies: [
            "Tensor", "NN", "FlowNets", "FlowData", "Losses", "CSupport",
            .product(name: "Yams", package: "Yams"),
        ]),
        // Data-parallel training over MPI: the `Communicator` Training uses, implemented on CMPI.
        .target(name: "DataParallel", dependencies: ["Training", "CMPI"]),
        .executableTarget(name: "mdflow", dependencies: [
            "Training", "DataParallel", "Tensor", "NN", "FlowNets", "FlowData",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ]),
        // Fuzz targets for every parser of untrusted bytes; `Scripts/fuzz.sh` builds it with libFuzzer.
        .executableTarget(name: "mdflow-fuzz", dependencies: [
            "Training", "Tensor", "NN", "FlowData",
            .product(name: "ZIPFoundation", package: "ZIPFoundation"),
        ]),

        // Shared test helpers: fixture loading, finite-difference gradient checks.
        .target(name: "TestSupport", dependencies: ["Tensor", "NN"], path: "Tests/TestSupport"),
        .testTarget(name: "TensorTests", dependencies: ["Tensor", "CKernels", "NN", "TestSupport"]),
        .testTarget(name: "NNTests", dependencies: ["Tensor", "NN", "TestSupport"]),
        .testTarget(name: "LossesTests", dependencies: ["Tensor", "NN", "Losses", "TestSupport"]),
        .testTarget(name: "FlowDataTests", dependencies: ["Tensor", "FlowData", "CSupport", "TestSupport"]),
        .testTarget(name: "FlowNetsTests", dependencies: ["Tensor", "NN", "FlowNets", "TestSupport"]),
        .testTarget(name: "TrainingTests", dependencies: ["Tensor", "NN", "FlowNets", "FlowData", "Losses", "Training", "TestSupport"]),
    ]
)
