#!/usr/bin/env bash
# Install the carried wheels into a scratch folder on the GPU node (scripts/gpu-check.sh's first stage), then the
# fallback wheels that the node's own packages make necessary (scripts/gpu/requirements.py chooses them), and the
# speed packages into a folder of their own: only the speed rows put it on their path, so a speed package that
# breaks on import cannot break the baseline. When the node has no redis-server, the carried Debian packages of one
# (WHEELS_DIR/redis/*.deb) are unpacked into REDIS_DIR (gpu-check.sh then puts REDIS_DIR/usr/bin on the PATH).
#   bash scripts/gpu/install-wheels.sh PYTHON WHEELS_DIR SITE_DIR SPEED_DIR REDIS_DIR  (SITE_DIR on PYTHONPATH)
set -euo pipefail
if [ $# -ne 5 ]; then
    echo "usage: install-wheels.sh PYTHON WHEELS_DIR SITE_DIR SPEED_DIR REDIS_DIR" >&2
    exit 2
fi
python=$1 wheels_dir=$2 site=$3 speed_site=$4 redis_root=$5
shopt -s nullglob
wheels=("$wheels_dir"/*.whl)
if [ "${#wheels[@]}" -eq 0 ]; then
    echo "no wheels in $wheels_dir: run scripts/gpu-wheels.sh where PyPI is reachable, and carry .whl" >&2
    exit 1
fi
pip=("$python" -m pip install --quiet --disable-pip-version-check --no-index --no-deps --no-compile --no-cache-dir
    --upgrade --target)
"${pip[@]}" "$site" "${wheels[@]}"
fallbacks=()
if [ -d "$wheels_dir/fallback" ]; then
    chosen=$("$python" "$(dirname "$0")/requirements.py" fallbacks "$site" "$wheels_dir/fallback")
    if [ -n "$chosen" ]; then mapfile -t fallbacks <<<"$chosen"; fi
fi
if [ "${#fallbacks[@]}" -gt 0 ]; then
    echo "installing fallbacks (the node's own copy is too old): ${fallbacks[*]}"
    "${pip[@]}" "$site" "${fallbacks[@]}"
fi
speed=("$wheels_dir"/speed/*.whl)
if [ "${#speed[@]}" -gt 0 ]; then
    "${pip[@]}" "$speed_site" "${speed[@]}"
fi
redis_debs=("$wheels_dir"/redis/*.deb)
redis="the node's $(command -v redis-server || echo none)"
if ! command -v redis-server >/dev/null && [ "${#redis_debs[@]}" -gt 0 ]; then
    mkdir -p "$redis_root"
    for deb in "${redis_debs[@]}"; do dpkg-deb -x "$deb" "$redis_root"; done
    redis="$(LD_LIBRARY_PATH="$redis_root/usr/lib/x86_64-linux-gnu" "$redis_root/usr/bin/redis-server" --version \
        2>&1 | head -1 || echo "unpacked, does not run")"
fi
echo "installed ${#wheels[@]} wheels and ${#fallbacks[@]} fallback(s) into $site, ${#speed[@]} speed package(s)" \
    "into $speed_site; redis-server: $redis"
