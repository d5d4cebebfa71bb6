#!/usr/bin/env bash
# Print the path of a Python interpreter >= 3.12 (the LSST middleware's floor).
#
# Looks at $PYTHON, then python3.13/python3.12/python3 on PATH, then pyenv's
# installed versions (newest first), so that a machine whose default python3 is
# older still works without any manual step.  $PYTHON is taken as given; among the
# others, the first whose zipfile reads bps' quantum graphs safely wins (Python
# 3.12.0-3.12.8 and 3.13.0-3.13.1 have CPython gh-127847, which fails larger bps
# submissions), else the first >= 3.12 with a note.  Exits 1 with a message if none.
set -u

zipfile_check="$(dirname "$0")/../python/lsst/obs/vista/batch/python_check.py"

is_recent() {
    "$1" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 12) else 1)' >/dev/null 2>&1
}

candidates=(python3.13 python3.12 python3)
pyenv_root=$(pyenv root 2>/dev/null || echo "${PYENV_ROOT:-$HOME/.pyenv}")
if [ -d "$pyenv_root/versions" ]; then
    while IFS= read -r dir; do
        candidates+=("$dir/bin/python3")
    done < <(ls -d "$pyenv_root"/versions/3.* 2>/dev/null | sort -t. -k2,2nr -k3,3nr)
fi

resolve() {
    # Resolve pyenv shims to the real interpreter so the venv does not
    # depend on which pyenv version happens to be active later.
    "$1" -c 'import sys; print(sys.executable)'
}

if [ -n "${PYTHON:-}" ] && path=$(command -v "$PYTHON" 2>/dev/null) && is_recent "$path"; then
    resolve "$path"
    exit 0
fi
fallback=""
for candidate in "${candidates[@]}"; do
    path=$(command -v "$candidate" 2>/dev/null) || continue
    is_recent "$path" || continue
    if "$path" "$zipfile_check"; then
        resolve "$path"
        exit 0
    fi
    [ -n "$fallback" ] || fallback=$path
done
if [ -n "$fallback" ]; then
    interpreter=$(resolve "$fallback")
    echo "find_python.sh: $interpreter has CPython gh-127847 (bps jobs on larger graphs fail); everything else works" >&2
    echo "$interpreter"
    exit 0
fi
echo "find_python.sh: no Python >= 3.12 found (tried: ${candidates[*]}); install one or set PYTHON=" >&2
exit 1
