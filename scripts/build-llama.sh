#!/usr/bin/env bash
# Build llama-cpp-python for THIS machine, once, and install it into the venv.
#
#   scripts/build-llama.sh .venv/bin/python
#
# Why not a plain `pip install llama-cpp-python`:
# - llama.cpp is compiled with -march=native. On Intel CPUs with AMX (Sapphire Rapids
#   and newer: AWS m7i, GCP C3/C4, Azure Dv5/Ev5) that compiles in llama.cpp's AMX
#   kernels, which crash (SIGSEGV in ggml_backend_amx_mul_mat) on virtualised AMX
#   machines. We build with -march=native minus AMX: AVX2, AVX-512 and VNNI stay
#   wherever the CPU has them.
# - pip caches the wheels it builds, keyed by the source archive only: a wheel built
#   with other flags, or on another CPU, would be reused silently. So the wheel is
#   built with pip's cache off, into a directory of our own whose name is a hash of
#   everything that shapes it (version, flags, CMAKE_ARGS, compiler, the CPU's
#   feature flags, this recipe), and only that wheel is ever installed.
#
# Environment: CMAKE_ARGS is passed through (for a GPU build:
# CMAKE_ARGS="-DGGML_CUDA=on"); it is part of the cache key. SOC_LLAMA_WHEEL_CACHE
# moves the cache (default: ${XDG_CACHE_HOME:-~/.cache}/soc-command-center/llama-cpp-python).
set -euo pipefail

python=${1:?usage: build-llama.sh VENV_PYTHON}
root=$(cd "$(dirname "$0")/.." && pwd)
# Bump when the recipe below changes in a way the key does not already capture.
recipe=2
version=$(sed -n 's/^llama[-_]cpp[-_]python==\([^ ;#]*\).*/\1/p' "$root/requirements.txt")
[ -n "$version" ] || { echo "build-llama: no llama-cpp-python==VERSION in requirements.txt" >&2; exit 2; }

no_amx="-mno-amx-int8 -mno-amx-tile -mno-amx-bf16"
case "$(uname -m)" in
  x86_64 | amd64 | i?86) arch_flags=$no_amx ;;
  *) arch_flags="" ;;  # AMX is an x86 extension; other CPUs keep the default build
esac
cflags="${CFLAGS:-} $arch_flags"
cxxflags="${CXXFLAGS:-} $arch_flags"
cmake_args="-DGGML_NATIVE=ON ${CMAKE_ARGS:-}"

compiler=$( (${CC:-cc} --version 2>/dev/null || true) | head -n1)
cpu=$( (grep -m1 -E '^(flags|Features)' /proc/cpuinfo 2>/dev/null || uname -m) | tr ' ' '\n' | sort | tr '\n' ' ')
pytag=$("$python" -c 'import sys; print(sys.implementation.cache_tag)')
key=$(printf '%s\n' "$recipe" "$version" "$cflags" "$cxxflags" "$cmake_args" "$compiler" "$cpu" "$pytag" \
  | sha256sum | cut -c1-16)

cache_root=${SOC_LLAMA_WHEEL_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/soc-command-center/llama-cpp-python}
wheels="$cache_root/$version-$key"
venv=$("$python" -c 'import sys; print(sys.prefix)')
marker="$venv/.llama-cpp-build"

if [ -f "$marker" ] && [ "$(cat "$marker")" = "$version-$key" ] \
  && "$python" -c 'import importlib.metadata as m, sys; sys.exit(m.version("llama_cpp_python") != sys.argv[1])' "$version" 2>/dev/null; then
  exit 0  # this venv already has exactly this build
fi

if ! compgen -G "$wheels/llama_cpp_python-$version-*.whl" >/dev/null; then
  echo "build-llama: compiling llama-cpp-python $version for this CPU without AMX (a few minutes; once per machine)"
  mkdir -p "$cache_root"
  tmp=$(mktemp -d "$cache_root/.building-XXXXXX")
  trap 'rm -rf "$tmp"' EXIT
  CFLAGS="$cflags" CXXFLAGS="$cxxflags" CMAKE_ARGS="$cmake_args" \
    CMAKE_BUILD_PARALLEL_LEVEL="${CMAKE_BUILD_PARALLEL_LEVEL:-$(nproc)}" \
    "$python" -m pip wheel --quiet --no-cache-dir --no-deps --no-binary llama-cpp-python \
    --wheel-dir "$tmp" "llama-cpp-python==$version"
  rm -rf "$wheels"
  mv "$tmp" "$wheels"
  trap - EXIT
fi

# --force-reinstall: a venv may hold a build made otherwise (an older checkout, pip's cache).
"$python" -m pip install --quiet --no-deps --no-index --force-reinstall \
  --find-links "$wheels" "llama-cpp-python==$version"
echo "$version-$key" >"$marker"
echo "build-llama: installed llama-cpp-python $version ($wheels)"
