{
  "targets": [
    {
      "target_name": "mezo_noise",
      "sources": [
        "shared/noise/native/addon.cc",
        "shared/noise/native/noise-kernel-generic.cc",
        "shared/noise/native/noise-kernel-avx2.cc",
        "shared/noise/native/noise-kernel-neon.cc"
      ],
      "include_dirs": [
        "<!(node -p \"require('node-addon-api').include_dir\")"
      ],
      "defines": [
        "NAPI_VERSION=8",
        "NAPI_CPP_EXCEPTIONS",
        "NODE_ADDON_API_CPP_EXCEPTIONS_ALL",
        "NODE_ADDON_API_DISABLE_DEPRECATED"
      ],
      # Exceptions are on: argument errors are thrown as Napi::TypeError / Napi::RangeError.
      "cflags!": ["-fno-exceptions"],
      "cflags_cc!": ["-fno-exceptions", "-std=gnu++17"],
      # -fno-fast-math comes first: it would otherwise switch -fmath-errno back on. -ffp-contract=off forbids
      # fused multiply-add, so every float operation rounds exactly as the TypeScript kernel's do. No -march:
      # the AVX2 code is enabled per function and chosen at run time.
      "cflags": [
        "-O3",
        "-fno-fast-math",
        "-ffp-contract=off",
        "-fno-math-errno",
        "-fvisibility=hidden",
        "-fexceptions",
        "-pthread"
      ],
      "cflags_cc": ["-std=c++17"],
      "ldflags": ["-pthread"],
      "xcode_settings": {
        "GCC_ENABLE_CPP_EXCEPTIONS": "YES",
        "CLANG_CXX_LANGUAGE_STANDARD": "c++17",
        "GCC_SYMBOLS_PRIVATE_EXTERN": "YES",
        "MACOSX_DEPLOYMENT_TARGET": "11.0",
        "OTHER_CFLAGS": [
          "-O3",
          "-fno-fast-math",
          "-ffp-contract=off",
          "-fno-math-errno",
          "-fvisibility=hidden"
        ]
      }
    }
  ]
}
