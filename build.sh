#!/usr/bin/env bash
# Test, package and deploy Custom::AuroraClone. Run ./build.sh help for the commands.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"

readonly VENV=.venv
# checkov pins boto3 and botocore far below this project's pins (1.35 against 1.43), so it cannot share .venv:
# it gets a venv of its own, made on first use.
readonly CHECKOV_VENV=.venv-checkov
readonly CHECKOV_VERSION=3.3.30
readonly BUILD=build
readonly ZIP_NAME=aurora-clone.zip
readonly TEMPLATE=template.yaml
readonly CODE_URI=build/aurora-clone.zip

# The Lambda runtime the zip is built for (template.yaml: python3.13 on arm64).
readonly LAMBDA_TARGET=(--platform manylinux2014_aarch64 --implementation cp --python-version 3.13
  --abi cp313 --only-binary=:all:)
# Pins for what the runtime dependencies in pyproject.toml (crhelper, aws-lambda-powertools) pull in.
# boto3 and what only it needs (botocore, s3transfer, python-dateutil, six, urllib3) come with the
# Lambda runtime and must not be shipped; packaging fails if any of them lands in the zip.
readonly RUNTIME_CONSTRAINTS=(jmespath==1.1.0 typing_extensions==4.16.0 scramp==1.5.0 asn1crypto==1.5.1
  python-dateutil==2.9.0.post0 six==1.17.0)
readonly RUNTIME_PROVIDED=(boto3 botocore s3transfer dateutil six.py urllib3)
# Of those, what the drivers pull in and the runtime ships as well (pg8000 needs python-dateutil, and it six):
# removed after the install, with their dist-info.
readonly RUNTIME_PROVIDED_PULLED=(dateutil six.py python_dateutil-*.dist-info six-*.dist-info)
# What no Lambda entry point (the Handler lines of template.yaml) imports: the embedded world, the CLI and
# the cfn-lint rules. Removed from the installed package, with their RECORD lines; tests/integration/
# test_packaging.py imports each entry point from the unzipped zip alone.
readonly NOT_IN_LAMBDA=(aurora_clone/local aurora_clone/lint aurora_clone/cli.py aurora_clone/target.py)

export PIP_DISABLE_PIP_VERSION_CHECK=1

usage() {
  cat <<'EOF'
Usage: ./build.sh [COMMAND] [ARGS...]

Commands:
  demo                Start the embedded AWS world (no AWS account needed), deploy the function, then
                      create, update and delete the example stack and show that nothing is left.
  bench [ARGS]        Run bench/lifecycle.py: N clone stacks at once in the embedded world (not a test).
  test [PYTEST ARGS]  Create .venv if needed, install the project with its dev extras (and checkov in
                      .venv-checkov), then run ruff check, ruff format --check, mypy (src, tests and
                      bench), cfn-lint, checkov (template.yaml) and pytest (tests/ and the doctests in
                      src/; extra arguments go to pytest, e.g. ./build.sh test -k packaging). Stops at the
                      first failure.
  package             Build build/aurora-clone.zip (the package without the CLI, the embedded world and
                      the cfn-lint rules, and its runtime dependencies, for python3.13 on arm64, without
                      boto3) and build/template.yaml, with the LICENSE and README.md its metadata names.
                      No AWS call.
  deploy              package, then aws cloudformation package + deploy. Needs LAMBDA_S3_BUCKET,
                      LAMBDA_S3_PREFIX, STACK_NAME and the aws CLI; DEPLOY_PARAMETERS, if set,
                      gives the stack's parameters as KEY=VALUE words.
  publish             package, then publish pyproject.toml's version to the AWS Serverless Application
                      Repository (sam publish when SAM CLI is installed, else the aws CLI's serverlessrepo
                      calls). Needs LAMBDA_S3_BUCKET, LAMBDA_S3_PREFIX and the aws CLI; SOURCE_CODE_URL,
                      if set, becomes the application's home page and source code URL.
  help                Show this text.

Without a command: deploy when LAMBDA_S3_BUCKET, LAMBDA_S3_PREFIX and STACK_NAME are all set.
Environment: PYTHON names the interpreter to use (default: .venv/bin/python if present, else python3).
EOF
}

log() { printf '==> %s\n' "$*" >&2; }
die() { printf 'build.sh: %s\n' "$*" >&2; exit 2; }

# The interpreter for packaging: $PYTHON, else the project's venv, else python3.
packaging_python() {
  if [[ -n "${PYTHON:-}" ]]; then
    printf '%s\n' "$PYTHON"
  elif [[ -x "$VENV/bin/python" ]]; then
    printf '%s\n' "$VENV/bin/python"
  else
    command -v python3 || die "python3 not found (set PYTHON to an interpreter)"
  fi
}

# ensure_venv EXTRAS: the project's venv with the package and the given extras installed ("dev" for the
# tests, "local" for the demo); reinstalls only when pyproject.toml or the extras changed.
ensure_venv() {
  local extras=$1
  if [[ ! -x "$VENV/bin/python" ]]; then
    log "creating $VENV"
    "${PYTHON:-python3}" -m venv "$VENV"
  fi
  local stamp="$VENV/.install-stamp-$extras" wanted
  wanted=$("$VENV/bin/python" -c \
    'import hashlib; print(hashlib.sha256(open("pyproject.toml", "rb").read()).hexdigest())')
  if [[ ! -f "$stamp" || "$(<"$stamp")" != "$wanted" ]]; then
    log "installing the project with its $extras extras into $VENV"
    "$VENV/bin/python" -m pip install --quiet --editable ".[$extras]"
    printf '%s\n' "$wanted" >"$stamp"
  fi
}

# ensure_checkov: $CHECKOV_VENV with checkov $CHECKOV_VERSION (about 20 s the first time, nothing after).
ensure_checkov() {
  local stamp="$CHECKOV_VENV/.install-stamp"
  if [[ -x "$CHECKOV_VENV/bin/checkov" && -f "$stamp" && "$(<"$stamp")" == "$CHECKOV_VERSION" ]]; then
    return
  fi
  log "installing checkov $CHECKOV_VERSION into $CHECKOV_VENV"
  "${PYTHON:-python3}" -m venv "$CHECKOV_VENV"
  "$CHECKOV_VENV/bin/python" -m pip install --quiet "checkov==$CHECKOV_VERSION"
  printf '%s\n' "$CHECKOV_VERSION" >"$stamp"
}

cmd_test() {
  ensure_venv dev
  ensure_checkov
  export PATH="$PWD/$VENV/bin:$PATH" VIRTUAL_ENV="$PWD/$VENV"
  local step
  # checkov: the template's security scan; each finding left is skipped on its resource with the reason
  # (Metadata: checkov: skip). --skip-download: no call to Prisma Cloud (guideline links only).
  for step in "ruff check src tests bench" "ruff format --check src tests bench" "mypy" \
    "cfn-lint --append-rules=src/aurora_clone/lint $TEMPLATE example/*.yaml" \
    "$CHECKOV_VENV/bin/checkov --file $TEMPLATE --framework cloudformation --quiet --compact --skip-download"; do
    log "$step"
    # shellcheck disable=SC2086  # each step is a command line; the glob is meant to expand
    $step
  done
  log "pytest $*"
  pytest "$@"
}

# The version in pyproject.toml: the one place it is kept.
project_version() {
  "$(packaging_python)" -c 'import tomllib; print(tomllib.load(open("pyproject.toml", "rb"))["project"]["version"])'
}

cmd_package() {
  local py staging lambda_dir="$BUILD/lambda" wheel_dir="$BUILD/wheel" found=() version
  py=$(packaging_python)
  version=$(project_version)
  grep -Eq "^[[:space:]]*SemanticVersion:[[:space:]]*${version//./\\.}[[:space:]]*\$" "$TEMPLATE" ||
    die "$TEMPLATE's SemanticVersion is not $version, the version in pyproject.toml"
  rm -rf "$lambda_dir" "$wheel_dir" "${BUILD:?}/$ZIP_NAME" "$BUILD/template.yaml" "$BUILD/constraints.txt" \
    "$BUILD/LICENSE" "$BUILD/README.md"
  mkdir -p "$lambda_dir" "$wheel_dir"

  # Build the wheel from a copy, so setuptools leaves no build/ or *.egg-info in the work tree.
  staging=$(mktemp -d)
  # shellcheck disable=SC2064  # expand now: the variable is local
  trap "rm -rf '$staging'" EXIT
  cp -R pyproject.toml src "$staging/"
  if [[ -f README.md ]]; then cp README.md "$staging/"; else printf 'Custom::AuroraClone\n' >"$staging/README.md"; fi
  log "building the aurora-clone wheel"
  "$py" -m pip wheel --quiet --no-deps --wheel-dir "$wheel_dir" "$staging"

  log "installing it and its runtime dependencies for python3.13 on arm64"
  printf '%s\n' "${RUNTIME_CONSTRAINTS[@]}" >"$BUILD/constraints.txt"
  "$py" -m pip install --quiet --target "$lambda_dir" "${LAMBDA_TARGET[@]}" \
    --constraint "$BUILD/constraints.txt" "$wheel_dir"/*.whl

  local name
  for name in "${RUNTIME_PROVIDED_PULLED[@]}"; do
    # shellcheck disable=SC2086  # the dist-info names are patterns
    rm -rf "${lambda_dir:?}"/$name
  done
  for name in "${RUNTIME_PROVIDED[@]}"; do
    if [[ -e "$lambda_dir/$name" ]]; then found+=("$name"); fi
  done
  ((${#found[@]} == 0)) || die "the zip would ship what the Lambda runtime provides: ${found[*]}"
  for name in "${NOT_IN_LAMBDA[@]}"; do
    [[ -e "$lambda_dir/$name" ]] || die "$name is not in the installed package: update NOT_IN_LAMBDA"
    rm -rf "${lambda_dir:?}/$name"
  done
  # The console script (aurora_clone.cli) is not shipped: neither bin/ nor the entry point naming it.
  rm -rf "${lambda_dir:?}/bin" "$lambda_dir"/aurora_clone-*.dist-info/entry_points.txt
  find "$lambda_dir" -name __pycache__ -type d -prune -exec rm -rf {} +
  # direct_url.json records this machine's build path and the wheel's hash: drop it.
  rm -f "$lambda_dir"/*.dist-info/direct_url.json
  # Keep every RECORD true: drop the lines of the files removed above.
  "$py" - "$lambda_dir" <<'PY'
"""Drop from each *.dist-info/RECORD under the directory the lines naming a file that is not there."""
import csv
import glob
import os
import sys

root = sys.argv[1]
for record in sorted(glob.glob(os.path.join(root, "*.dist-info", "RECORD"))):
    with open(record, encoding="utf-8", newline="") as source:
        lines = source.read().splitlines(keepends=True)
    kept = [line for line in lines if line.strip() and os.path.isfile(os.path.join(root, next(csv.reader([line]))[0]))]
    with open(record, "w", encoding="utf-8", newline="") as target:
        target.writelines(kept)
PY

  log "writing $BUILD/$ZIP_NAME"
  "$py" - "$lambda_dir" "$BUILD/$ZIP_NAME" <<'PY'
"""Zip a directory reproducibly: sorted entries, fixed timestamps and permissions."""
import os
import sys
import zipfile

root, target = sys.argv[1], sys.argv[2]
names = []
for directory, subdirectories, files in os.walk(root):
    subdirectories[:] = [d for d in subdirectories if d != "__pycache__"]
    names += [os.path.relpath(os.path.join(directory, f), root) for f in files if not f.endswith(".pyc")]
with zipfile.ZipFile(target, "w") as archive:
    for name in sorted(n.replace(os.sep, "/") for n in names):
        info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
        info.compress_type = zipfile.ZIP_DEFLATED
        info.external_attr = 0o100644 << 16
        with open(os.path.join(root, name), "rb") as source:
            archive.writestr(info, source.read(), compresslevel=9)
print(f"{target}: {len(names)} files", file=sys.stderr)
PY

  sed "s#^\([[:space:]]*CodeUri:[[:space:]]*\)${CODE_URI}[[:space:]]*\$#\1${ZIP_NAME}#" "$TEMPLATE" >"$BUILD/template.yaml"
  grep -Eq "^[[:space:]]*CodeUri:[[:space:]]*${ZIP_NAME}\$" "$BUILD/template.yaml" ||
    die "$TEMPLATE has no 'CodeUri: $CODE_URI' line to point at the zip"
  # The Serverless Application Repository metadata names these files relative to the template.
  cp LICENSE README.md "$BUILD/"
  log "wrote $BUILD/template.yaml (CodeUri: $ZIP_NAME, SemanticVersion: $version) with LICENSE and README.md"
}

cmd_demo() {
  ensure_venv local
  "$VENV/bin/aurora-clone" local demo "$@"
}

cmd_bench() {
  ensure_venv local
  "$VENV/bin/python" bench/lifecycle.py "$@"
}

cmd_deploy() {
  local missing=() variable
  for variable in LAMBDA_S3_BUCKET LAMBDA_S3_PREFIX STACK_NAME; do
    [[ -n "${!variable:-}" ]] || missing+=("$variable")
  done
  command -v aws >/dev/null 2>&1 || missing+=("the aws CLI on PATH")
  ((${#missing[@]} == 0)) || die "deploy needs: ${missing[*]}"

  cmd_package
  log "aws cloudformation package -> $BUILD/packaged.yaml"
  aws cloudformation package \
    --template-file "$BUILD/template.yaml" \
    --s3-bucket "$LAMBDA_S3_BUCKET" \
    --s3-prefix "$LAMBDA_S3_PREFIX" \
    --output-template-file "$BUILD/packaged.yaml"
  # DEPLOY_PARAMETERS: the function stack's parameters as KEY=VALUE words, such as
  # "ConnectionCheckSubnetIds=subnet-0a,subnet-0b ConnectionCheckSecurityGroupIds=sg-0c".
  local overrides=()
  if [[ -n "${DEPLOY_PARAMETERS:-}" ]]; then
    read -r -a overrides <<<"$DEPLOY_PARAMETERS"
    overrides=(--parameter-overrides "${overrides[@]}")
  fi
  log "aws cloudformation deploy --stack-name $STACK_NAME"
  aws cloudformation deploy \
    --template-file "$BUILD/packaged.yaml" \
    --stack-name "$STACK_NAME" \
    --capabilities CAPABILITY_IAM CAPABILITY_AUTO_EXPAND \
    --no-fail-on-empty-changeset \
    "${overrides[@]}"
}

cmd_publish() {
  local missing=() variable
  for variable in LAMBDA_S3_BUCKET LAMBDA_S3_PREFIX; do
    [[ -n "${!variable:-}" ]] || missing+=("$variable")
  done
  command -v aws >/dev/null 2>&1 || missing+=("the aws CLI on PATH")
  ((${#missing[@]} == 0)) || die "publish needs: ${missing[*]}"

  cmd_package
  local py version
  py=$(packaging_python)
  version=$(project_version)
  if [[ -n "${SOURCE_CODE_URL:-}" ]]; then
    "$py" - "$BUILD/template.yaml" "$SOURCE_CODE_URL" <<'PY'
"""Add HomePageUrl and SourceCodeUrl after SemanticVersion in the built template's application metadata."""
import re
import sys

path, url = sys.argv[1], sys.argv[2]
with open(path, encoding="utf-8") as source:
    text = source.read()
line = re.search(r"^([ \t]*)SemanticVersion:.*$", text, re.MULTILINE)
indent = line.group(1)
added = f"\n{indent}HomePageUrl: {url}\n{indent}SourceCodeUrl: {url}"
with open(path, "w", encoding="utf-8") as target:
    target.write(text[: line.end()] + added + text[line.end() :])
PY
  fi
  # Uploads the zip, LICENSE and README.md, and writes their S3 addresses into the packaged template.
  log "aws cloudformation package -> $BUILD/packaged.json"
  aws cloudformation package \
    --template-file "$BUILD/template.yaml" \
    --s3-bucket "$LAMBDA_S3_BUCKET" \
    --s3-prefix "$LAMBDA_S3_PREFIX/$version" \
    --use-json \
    --output-template-file "$BUILD/packaged.json"
  if command -v sam >/dev/null 2>&1; then
    log "sam publish --semantic-version $version"
    sam publish --template "$BUILD/packaged.json" --semantic-version "$version"
    return
  fi
  local name application_id
  name=$("$py" -c 'import json, sys
print(json.load(open(sys.argv[1]))["Metadata"]["AWS::ServerlessRepo::Application"]["Name"])' "$BUILD/packaged.json")
  application_id=$(aws serverlessrepo list-applications --output text \
    --query "Applications[?Name=='$name'].ApplicationId | [0]")
  if [[ -z "$application_id" || "$application_id" == None ]]; then
    log "aws serverlessrepo create-application $name $version"
    "$py" - "$BUILD/packaged.json" >"$BUILD/create-application.json" <<'PY'
"""The create-application request: the application metadata, and the packaged template as its first version."""
import json
import sys

with open(sys.argv[1], encoding="utf-8") as source:
    body = source.read()
request = dict(json.loads(body)["Metadata"]["AWS::ServerlessRepo::Application"])
request["TemplateBody"] = body
print(json.dumps(request, indent=2))
PY
    aws serverlessrepo create-application --cli-input-json "file://$BUILD/create-application.json"
  else
    log "aws serverlessrepo create-application-version $application_id $version"
    local source_code=()
    if [[ -n "${SOURCE_CODE_URL:-}" ]]; then source_code=(--source-code-url "$SOURCE_CODE_URL"); fi
    aws serverlessrepo create-application-version \
      --application-id "$application_id" \
      --semantic-version "$version" \
      --template-body "file://$BUILD/packaged.json" \
      "${source_code[@]}"
  fi
}

main() {
  if (($# == 0)); then
    if [[ -n "${LAMBDA_S3_BUCKET:-}" && -n "${LAMBDA_S3_PREFIX:-}" && -n "${STACK_NAME:-}" ]]; then
      cmd_deploy
      return
    fi
    usage >&2
    exit 2
  fi
  local command=$1
  shift
  case "$command" in
    test) cmd_test "$@" ;;
    demo) cmd_demo "$@" ;;
    bench) cmd_bench "$@" ;;
    package) cmd_package ;;
    deploy) cmd_deploy ;;
    publish) cmd_publish ;;
    help | -h | --help) usage ;;
    *)
      printf 'build.sh: unknown command: %s\n\n' "$command" >&2
      usage >&2
      exit 2
      ;;
  esac
}

main "$@"
