# canopy-batch.sh -- shell functions shared by canopy-nightly, canopy-parallel
# and canopy-slurm. Sourced, not run; POSIX sh. The caller sets `prog` (its
# name for messages) and `self_dir` (the folder it was run from). Variables
# of the functions start with an underscore and their name's initials.
# shellcheck shell=sh disable=SC2034,SC2154

# Exit statuses, the same in the three commands.
CNP_OK=0        # every scene done or up to date (or nothing to do)
CNP_FAILED=1    # one or more scenes failed; the others are done
CNP_USAGE=2     # usage error: these commands' options, or canopy classify's
CNP_BUSY=3      # canopy-nightly: another run holds the lock;
                # canopy-slurm --report: the job is still running
CNP_MISSING=4   # canopy, flock, parallel or sbatch is missing or refused to run
CNP_ABORTED=5   # canopy-nightly: canopy was killed or the run was interrupted

# usage_error MESSAGE: "PROG: MESSAGE; try 'PROG --help'", exit 2.
usage_error() {
    printf "%s: %s; try '%s --help'\n" "$prog" "$1" "$prog" >&2
    exit "$CNP_USAGE"
}

# fatal STATUS MESSAGE: "PROG: MESSAGE", exit STATUS.
fatal() {
    printf '%s: %s\n' "$prog" "$2" >&2
    exit "$1"
}

# need_arg OPTION ARGC: an option's value is there.
need_arg() {
    [ "$2" -ge 2 ] || usage_error "$1 needs a value"
}

# push LIST VALUE: appends VALUE to the list named LIST: its items are the
# variables LIST_0, LIST_1, ..., their number LIST_n. A caller gets them back
# as words with
#   i=0; while [ "$i" -lt "${LIST_n:-0}" ]; do eval "set -- \"\$@\" \"\$LIST_$i\""; i=$((i + 1)); done
# eval only ever sees variable names, never VALUE: no user string is parsed by
# a shell.
push() {
    eval "_pu_i=\${$1_n:-0}"
    eval "$1_$_pu_i=\$2"
    eval "$1_n=\$((_pu_i + 1))"
}

# quote WORD: WORD in single quotes, for a command line shown to people.
quote() {
    printf "'%s'" "$(printf '%s' "$1" | sed "s/'/'\\\\''/g")"
}

# abspath PATH: PATH made absolute against the current folder (not resolved,
# so that it names the same file on every host of a shared filesystem).
# GDAL names such as /vsicurl/..., NETCDF:"f.nc":var or URLs are left alone.
abspath() {
    case $1 in
    /* | *://*) printf '%s\n' "$1" ;;
    *)
        case ${1%%:*} in
        "$1" | '' | *[!A-Z0-9_]*) printf '%s/%s\n' "${PWD%/}" "${1#./}" ;;
        *) printf '%s\n' "$1" ;;  # DRIVER:...
        esac
        ;;
    esac
}

# whole_number OPTION VALUE MIN: VALUE is a whole number >= MIN.
whole_number() {
    case $2 in
    '' | *[!0-9]*) usage_error "$1 expects a whole number, got '$2'" ;;
    esac
    [ "$2" -ge "$3" ] || usage_error "$1 expects a whole number of $3 or more, got '$2'"
}

# find_canopy GIVEN: prints the absolute path of the canopy program: GIVEN
# (--canopy), else $CANOPY, else the canopy next to this command (the
# installed layout: cron's PATH rarely holds /usr/local/bin), else canopy on
# PATH. Exits 4 when there is none.
find_canopy() {
    _fc=${1:-${CANOPY:-}}
    if [ -z "$_fc" ]; then
        if [ -f "$self_dir/canopy" ] && [ -x "$self_dir/canopy" ]; then
            _fc=$self_dir/canopy
        else
            _fc=$(command -v canopy 2>/dev/null) ||
                fatal "$CNP_MISSING" "canopy is not installed next to $prog ($self_dir) nor on PATH ($PATH); give --canopy PATH or set CANOPY"
        fi
    fi
    case $_fc in
    */*) _fc=$(abspath "$_fc") ;;
    *) _fc=$(command -v "$_fc" 2>/dev/null) || fatal "$CNP_MISSING" "$1: no such program on PATH ($PATH); give --canopy with a full path" ;;
    esac
    [ -f "$_fc" ] && [ -x "$_fc" ] ||
        fatal "$CNP_MISSING" "$_fc: no such program (or not executable); give --canopy PATH or set CANOPY to the canopy program"
    printf '%s\n' "$_fc"
}

# need_program NAME PACKAGE: NAME is on PATH, else exit 4 naming the package.
need_program() {
    command -v "$1" >/dev/null 2>&1 ||
        fatal "$CNP_MISSING" "$1 is not installed (Debian: apt-get install $2)"
}

# own_folder DIR: DIR is a folder (not a symbolic link) of this user that no
# one else can write to; else returns 1 with the reason in $own_why. Files at
# predictable names go only in such a folder.
own_folder() {
    _of=$(stat -c '%u %a %F' -- "$1" 2>/dev/null) || _of='? ? missing'
    _of_mode=${_of#* }
    _of_mode=${_of_mode%% *}
    if [ "${_of#* * }" != directory ]; then
        own_why="$1 is not a folder (${_of#* * }); give a folder of your own"
    elif [ "${_of%% *}" != "$(id -u)" ]; then
        own_why="the folder $1 belongs to user ${_of%% *}, not to this user ($(id -u)); give a folder of your own"
    elif [ $((0$_of_mode & 022)) -ne 0 ]; then
        own_why="the folder $1 is writable by others (mode $_of_mode); chmod go-w it, or give a folder of your own"
    else
        return 0
    fi
    return 1
}

# lock_open LOCK: opens the lock folder LOCK on fd 9 (creating it when
# missing), for `flock 9`. A lock in a shared folder is a target: nothing is
# ever opened through a symbolic link nor written but inside a folder this
# user made. mkdir does not follow a link at LOCK; "LOCK/." can open only a
# folder, read-only (a link swapped in meanwhile leads at worst to another
# folder, which the checks below then refuse); the folder held on fd 9 must
# be the one at LOCK (same device and inode, not a link), owned by this user
# and writable by no one else. Its file `owner` ("PID N on HOST, started
# TIME") is reached through fd 9 (/dev/fd/9/owner), never through LOCK.
# Returns 1 with the reason in $lock_why (fd 9 then closed).
lock_open() {
    mkdir -m 0755 -- "$1" 2>/dev/null || true
    if [ -L "$1" ]; then
        _lo_to=$(readlink -- "$1" 2>/dev/null) || _lo_to='?'
        lock_why="$1 is a symbolic link (to $(printf '%s' "$_lo_to" | tr '[:cntrl:]' '?')); the lock is never followed through one: remove it, or give --lock PATH"
        return 1
    fi
    if [ ! -d "$1" ]; then
        if [ -e "$1" ]; then
            lock_why="$1 exists and is not a folder (the lock is a folder canopy-nightly makes; a lock file of an older canopy-nightly can be removed when no run is going); remove it, or give --lock PATH"
        else
            lock_why="cannot create the lock folder $1; give a writable --lock PATH"
        fi
        return 1
    fi
    if ! { command exec 9<"$1/."; } 2>/dev/null; then
        lock_why="cannot open the lock folder $1; check its permissions"
        return 1
    fi
    _lo_held=$(stat -L -c '%d:%i %u %a' /dev/fd/9 2>/dev/null) || _lo_held='?'
    _lo_path=$(stat -c '%d:%i %F' -- "$1" 2>/dev/null) || _lo_path='?'
    _lo_mode=${_lo_held##* }
    _lo_uid=${_lo_held#* }
    _lo_uid=${_lo_uid% *}
    if [ "${_lo_held%% *} directory" != "$_lo_path" ]; then
        lock_why="the lock folder $1 was replaced while being opened; is another program changing it?"
    elif [ "$_lo_uid" != "$(id -u)" ]; then
        lock_why="the lock folder $1 belongs to user $_lo_uid, not to this user ($(id -u)); remove it, or give --lock PATH"
    elif [ $((0$_lo_mode & 022)) -ne 0 ]; then
        lock_why="the lock folder $1 is writable by others (mode $_lo_mode); chmod go-w it, or give --lock PATH"
    else
        return 0
    fi
    exec 9<&-
    return 1
}

# check_classify_opts ARG...: refuses, in the options passed on to canopy
# classify, what the command decides itself.
check_classify_opts() {
    for _cco in "$@"; do
        case $_cco in
        -o | --output | --output=*)
            usage_error "give the output folder with $prog's own -o OUTDIR, not after --" ;;
        --alerts | --alerts=*)
            usage_error "give the alert state folder with $prog's own --alerts DIR, not after --" ;;
        --progress | --progress=* | --list)
            usage_error "$_cco after --: $prog reads canopy's event stream (--progress=jsonl) itself; leave it out" ;;
        esac
    done
}

# events COMMAND ARG...: canopy-batch-events (beside canopy-batch.sh), the
# reader of canopy's JSONL events, with Python 3: the interpreter written
# into the command at install (python3=), else /usr/bin/python3, else
# python3 on PATH.
events() {
    if [ -z "${python3:-}" ]; then
        if [ -x /usr/bin/python3 ]; then python3=/usr/bin/python3
        else python3=$(command -v python3 2>/dev/null) || python3=python3
        fi
    fi
    "$python3" "$lib_dir/canopy-batch-events" "$@"
}

# escape: standard input as one line, control characters escaped (for a log
# line that quotes text from elsewhere).
escape() {
    events escape
}

# scene_list OUT ARG...: writes the scenes named by ARG... to OUT, one
# absolute path a line, in order. ARG is a scene, @LIST (a text file of
# scenes, one a line; blank lines and '#' comments skipped; relative paths
# taken from the current folder, as canopy classify does) or a folder: its
# files ending in .tif, .tiff, .vrt, .jp2, .img or .ntf (sorted; hidden files
# and canopy's own outputs skipped). Exits 2 when none is found.
scene_list() {
    _sl_out=$1
    shift
    : >"$_sl_out"
    for _sl_a in "$@"; do
        case $_sl_a in
        @*)
            _sl_l=${_sl_a#@}
            [ -f "$_sl_l" ] && [ -r "$_sl_l" ] ||
                usage_error "cannot read the scene list $_sl_l (from $_sl_a); give @FILE with one scene a line"
            sed -e 's/\r$//' -e 's/^[[:space:]]*//' -e 's/[[:space:]]*$//' -e '/^$/d' -e '/^#/d' \
                "$_sl_l" | while IFS= read -r _sl_s; do abspath "$_sl_s"; done >>"$_sl_out"
            ;;
        *)
            if [ -d "$_sl_a" ]; then
                _sl_d=$(abspath "$_sl_a")
                _sl_d=${_sl_d%/}
                find -L "$_sl_d" -mindepth 1 -maxdepth 1 -type f ! -name '.*' \
                    \( -iname '*.tif' -o -iname '*.tiff' -o -iname '*.vrt' -o -iname '*.jp2' \
                    -o -iname '*.img' -o -iname '*.ntf' \) \
                    ! -name '*.probs.tif' ! -name '*.masks.tif' | LC_ALL=C sort >>"$_sl_out"
            else
                abspath "$_sl_a" >>"$_sl_out"
            fi
            ;;
        esac
    done
    [ -s "$_sl_out" ] || usage_error "no scene to classify in: $*; give scenes, folders of rasters or @LIST files"
}
