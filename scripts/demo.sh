#!/usr/bin/env bash
# Builds the demo site (web/demo) and serves it with the local Hub server over ../shared/hub, which
# is also the page's default Hub endpoint (same origin). Works on a fresh Debian machine: installs
# what is missing, builds the wasm modules, the TypeScript package and the site.
#
#   scripts/demo.sh                serve on http://127.0.0.1:${PORT:-8090}/
#   scripts/demo.sh --build-only   build web/demo/dist and stop
#
# Environment: PORT (default 8090), HOST (default 127.0.0.1; 0.0.0.0 to serve other machines),
# HUB_DIR (default ../shared/hub, a folder in the Hub layout <org>/<name>/<file>).
set -euo pipefail
cd "$(dirname "$0")/.."

build_only=false
for arg in "$@"; do
  case "$arg" in
    --build-only) build_only=true ;;
    -h | --help)
      sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//'
      exit 0
      ;;
    *)
      echo "demo.sh: unknown argument '$arg' (try --help)" >&2
      exit 2
      ;;
  esac
done

port="${PORT:-8090}"
host="${HOST:-127.0.0.1}"
hub_dir="${HUB_DIR:-../shared/hub}"

bash scripts/setup.sh
echo "demo: building the wasm modules"
bash scripts/build-wasm.sh --target webquant-simd webquant webquant-simd-mt
echo "demo: compiling the TypeScript package"
npm run --silent build:ts
echo "demo: building the site"
npx --no-install tsc -p web/demo/tsconfig.json # type-check (Vite only strips the types)
npx --no-install vite build --config web/demo/vite.config.ts --logLevel warn
echo "demo: built web/demo/dist"

if $build_only; then
  exit 0
fi

if [ ! -d "$hub_dir" ]; then
  echo "demo: the Hub folder $hub_dir does not exist (set HUB_DIR)" >&2
  exit 1
fi
shown_host="$host"
[ "$host" = "0.0.0.0" ] && shown_host="127.0.0.1"
echo
echo "  webquant demo: http://$shown_host:$port/"
echo "  (Playground /, Model lab /lab.html, Notebooks /notebooks.html, script module /notebook.html; Hub mirror: $hub_dir)"
echo "  (cross-origin isolated: the core computes with up to 8 threads; the header badge says how many)"
echo "  Ctrl-C stops the server."
echo
# --coi: COOP/COEP headers, so the page is cross-origin isolated and the core runs its pthreads build.
exec node scripts/hub-server.mjs --root "$hub_dir" --static web/demo/dist --host "$host" --port "$port" --coi --quiet
