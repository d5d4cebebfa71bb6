#!/usr/bin/env bash
# Print the path of a Python interpreter >= 3.12 (the LSST middleware's floor).
#
# Looks at $PYTHON, then python3.13/python3.12/python3 on PATH, then pyenv's
# installed versions (newest first), so that a machine whose default python3 is
# older still works without any manual step.  Exits 1 with a message if none.
set -u

is_recent() {
    "$1" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 12) else 1)' >/dev/null 2>&1
}

candidates=()
[ -n "${PYTHON:-}" ] && candidates+=("$PYTHON")
candidates+=(python3.13 python3.12 python3)
pyenv_root=$(pyenv root 2>/dev/null || echo "${PYENV_ROOT:-$HOME/.pyenv}")
if [ -d "$pyenv_root/versions" ]; then
    while IFS= read -r dir; do
        candidates+=("$dir/bin/python3")
    done < <(ls -d "$pyenv_root"/versions/3.* 2>/dev/null | sort -t. -k2,2nr -k3,3nr)
fi

for candidate in "${candidates[@]}"; do
    path=$(command -v "$candidate" 2>/dev/null) || continue
    if is_recent "$path"; then
        # Resolve pyenv shims to the real interpreter so the venv does not
        # depend on which pyenv version happens to be active later.
        "$path" -c 'import sys; print(sys.executable)'
        exit 0
    fi
done
echo "find_python.sh: no Python >= 3.12 found (tried: ${candidates[*]}); install one or set PYTHON=" >&2
exit 1
