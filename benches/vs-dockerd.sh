#!/usr/bin/env bash
# strata side by side with dockerd 20.10 (vfs) on the same workloads (issue 8).
#
#   bash benches/vs-dockerd.sh [--quick]
#
# Needs root, dockerd + /usr/bin/docker (Debian docker.io 20.10), curl, jq,
# openssl, /usr/bin/time; uses hyperfine for the read-only commands when it is
# installed. Workloads are generated deterministically (no network) by the
# `workloads` bench target into $WORK (default target/vs-dockerd) and reused.
#
# Targets, run alternately, RUNS times each:
#   dockerd  the docker CLI against a private dockerd (temp data root, vfs,
#            private socket, --iptables=false --ip6tables=false --bridge=none)
#   strata   the `strata` CLI (cargo build --release) on a private store
#   serve    the docker CLI against `strata serve --root R --socket S`
# Prints the median of each operation, and the ratios dockerd/strata and
# dockerd/serve (> 1 means strata is faster).
#
# Env: BIG_MIB (W-big size, default 1024; quick 64), FILES (W-files, 100000;
# quick 5000), MANY (W-many, 2000; quick 200), RUNS (3; quick 1), READS
# (samples per read-only command per run, 10; quick 3), WORK, and
# STRATA_BIN / WORKLOADS_BIN (prebuilt binaries: skip the cargo builds).
set -euo pipefail

QUICK=0
[[ ${1:-} == --quick ]] && QUICK=1
if ((QUICK)); then d_big=64 d_files=5000 d_many=200 d_runs=1 d_reads=3; else
	d_big=1024 d_files=100000 d_many=2000 d_runs=3 d_reads=10; fi
BIG_MIB=${BIG_MIB:-$d_big}
FILES=${FILES:-$d_files}
MANY=${MANY:-$d_many}
RUNS=${RUNS:-$d_runs}
READS=${READS:-$d_reads}
NTAG=$((MANY / 2 < 1000 ? MANY / 2 : 1000))
REPO=$(cd "$(dirname "$0")/.." && pwd)
WORK=${WORK:-$REPO/target/vs-dockerd}
W=$WORK/w
DOCKER=/usr/bin/docker
ONE=wmany/img$((MANY * 6 / 10 + 17)) # "one image among 2,000"

[[ $(id -u) == 0 ]] || {
	echo "vs-dockerd.sh: dockerd needs root" >&2
	exit 1
}
for t in dockerd "$DOCKER" curl jq openssl /usr/bin/time; do
	command -v "$t" >/dev/null || PATH=$PATH:/usr/sbin:/sbin command -v "$t" >/dev/null || {
		echo "vs-dockerd.sh: $t is missing" >&2
		exit 1
	}
done
HYPERFINE=$(command -v hyperfine || true)

log() { printf '== %s\n' "$*" >&2; }

# --- build and generate ------------------------------------------------------
# STRATA_BIN / WORKLOADS_BIN: use these prebuilt binaries instead of building.
if [[ -z ${STRATA_BIN:-} ]]; then
	log "building strata (release)"
	(cd "$REPO" && cargo build --release --bin strata -q)
fi
STRATA=${STRATA_BIN:-$REPO/target/release/strata}
mkdir -p "$W"
log "generating the workloads in $W"
if [[ -n ${WORKLOADS_BIN:-} ]]; then
	"$WORKLOADS_BIN" "$W" "$BIG_MIB" "$FILES" "$MANY"
else
	(cd "$REPO" && cargo bench -q --bench workloads -- "$W" "$BIG_MIB" "$FILES" "$MANY")
fi
ls -l "$W"/*.tar >&2

# --- private daemons -----------------------------------------------------------
D=$(mktemp -d /tmp/svd.XXXXXX) # short: unix socket paths must stay < 108 bytes
export DOCKER_CONFIG=$D/cli DOCKER_BUILDKIT=0
unset DOCKER_HOST DOCKER_CONTEXT DOCKER_TLS_VERIFY
DSOCK=$D/d.sock
SSOCK=$D/s.sock
SROOT=$D/strata-cli
VROOT=$D/strata-serve
DPID= VPID= RPID=
cleanup() {
	set +e
	[[ -n $VPID ]] && kill "$VPID" 2>/dev/null && wait "$VPID" 2>/dev/null
	[[ -n $RPID ]] && kill "$RPID" 2>/dev/null && wait "$RPID" 2>/dev/null
	if [[ -n $DPID ]]; then
		kill "$DPID" 2>/dev/null
		for _ in $(seq 200); do kill -0 "$DPID" 2>/dev/null || break; sleep 0.1; done
		kill -9 "$DPID" 2>/dev/null
		local cpid
		cpid=$(cat "$D/exec/containerd/containerd.pid" 2>/dev/null) && kill -9 "$cpid" 2>/dev/null
		wait "$DPID" 2>/dev/null
	fi
	rm -rf "$D"
}
trap cleanup EXIT

log "starting a private dockerd in $D"
dockerd --data-root "$D/root" --exec-root "$D/exec" --pidfile "$D/pid" \
	-H "unix://$DSOCK" --storage-driver vfs \
	--iptables=false --ip6tables=false --bridge=none >"$D/dockerd.log" 2>&1 &
DPID=$!
log "starting strata serve"
"$STRATA" --root "$VROOT" serve --socket "$SSOCK" >"$D/serve.log" 2>&1 &
VPID=$!
for _ in $(seq 600); do
	$DOCKER -H "unix://$DSOCK" version >/dev/null 2>&1 && $DOCKER -H "unix://$SSOCK" version >/dev/null 2>&1 && break
	kill -0 "$DPID" && kill -0 "$VPID" || { cat "$D/dockerd.log" "$D/serve.log" >&2; exit 1; }
	sleep 0.1
done
$DOCKER -H "unix://$DSOCK" version --format 'dockerd {{.Server.Version}}' >&2

# X TARGET ARGS...: the image command of each target.
X() {
	local t=$1
	shift
	case $t in
	dockerd) $DOCKER -H "unix://$DSOCK" "$@" ;;
	serve) $DOCKER -H "unix://$SSOCK" "$@" ;;
	strata) "$STRATA" --root "$SROOT" "$@" ;;
	esac
}
sock_of() { case $1 in dockerd) echo "$DSOCK" ;; serve) echo "$SSOCK" ;; esac; }
pid_of() { case $1 in dockerd) echo "$DPID" ;; serve) echo "$VPID" ;; esac; }
hwm_kib() { awk '/VmHWM/ {print $2}' "/proc/$1/status"; }

RES=$WORK/results.tsv
: >"$RES"
rec() { printf '%s\t%s\t%s\n' "$1" "$2" "$3" >>"$RES"; } # op target value
now() { date +%s%N; }
# timed OP TARGET CMD...: run once, record seconds.
timed() {
	local op=$1 t=$2 s e
	shift 2
	s=$(now)
	"$@" >/dev/null
	e=$(now)
	rec "$op" "$t" "$(awk -v a="$s" -v b="$e" 'BEGIN{printf "%.4f", (b-a)/1e9}')"
}
# reads OP TARGET CMD: a read-only shell command, READS samples (hyperfine's
# median when installed, else each sample recorded).
reads() {
	local op=$1 t=$2 cmd=$3
	if [[ -n $HYPERFINE ]]; then
		"$HYPERFINE" -N --warmup 1 --runs "$READS" --export-json "$D/hf.json" "$cmd" >/dev/null 2>&1 ||
			"$HYPERFINE" --warmup 1 --runs "$READS" --export-json "$D/hf.json" "$cmd" >/dev/null
		rec "$op" "$t" "$(jq -r '.results[0].median | . * 10000 | round / 10000' "$D/hf.json")"
	else
		for _ in $(seq "$READS"); do timed "$op" "$t" bash -c "$cmd"; done
	fi
}

# load_measured OP TARGET FILE: time a load, and its peak memory.
load_measured() {
	local op=$1 t=$2 f=$3 s e before after
	sync # untimed: start without the previous operation's dirty pages
	if [[ $t == strata ]]; then
		s=$(now)
		/usr/bin/time -v -o "$D/time.txt" "$STRATA" --root "$SROOT" load -q -i "$f" >/dev/null
		e=$(now)
		rec "$op.maxrss_mib" "$t" "$(awk -F: '/Maximum resident/ {printf "%.1f", $2/1024}' "$D/time.txt")"
	else
		before=$(hwm_kib "$(pid_of "$t")")
		s=$(now)
		X "$t" load -q -i "$f" >/dev/null
		e=$(now)
		after=$(hwm_kib "$(pid_of "$t")")
		rec "$op.vmhwm_before_mib" "$t" "$(awk -v k="$before" 'BEGIN{printf "%.1f", k/1024}')"
		rec "$op.maxrss_mib" "$t" "$(awk -v k="$after" 'BEGIN{printf "%.1f", k/1024}')"
	fi
	rec "$op" "$t" "$(awk -v a="$s" -v b="$e" 'BEGIN{printf "%.4f", (b-a)/1e9}')"
}

cmd_of() { # the shell text of `X t ...` for hyperfine
	case $1 in
	dockerd) printf '%s -H unix://%s' "$DOCKER" "$DSOCK" ;;
	serve) printf '%s -H unix://%s' "$DOCKER" "$SSOCK" ;;
	strata) printf '%s --root %s' "$STRATA" "$SROOT" ;;
	esac
}

empty_store() { # remove every image of target $1 (untimed)
	X "$1" image prune -a -f >/dev/null
	local left
	left=$(X "$1" images -a -q | wc -l)
	[[ $left == 0 ]] || { echo "$1: $left images left after prune -a" >&2; exit 1; }
}

suite() {
	local t=$1 i refs
	log "run $run: $t"
	empty_store "$t"
	load_measured load_wbig "$t" "$W/wbig.tar"
	rm -f "$D/save.tar"
	sync
	timed save_wbig "$t" X "$t" save -o "$D/save.tar" wbig/img:latest
	rec save_wbig.bytes "$t" "$(stat -c %s "$D/save.tar")"
	rm -f "$D/save.tar"
	if [[ $t == strata ]]; then
		# The simple-tool limit for save on the files strata copies from:
		# its eight layer blobs concatenated into one file (cat uses
		# copy_file_range, as strata's save does).
		local blobs=()
		for i in $(X strata inspect wbig/img:latest | jq -r '.[0].RootFS.Layers[]'); do
			blobs+=("$SROOT/blobs/sha256/${i#sha256:}")
		done
		timed tool_cat_blobs tools bash -c 'cat "$@" >"'"$D"'/cat.tar"' cat "${blobs[@]}"
		rm -f "$D/cat.tar"
	fi
	X "$t" rmi wbig/img:latest >/dev/null
	load_measured load_wbig_gz "$t" "$W/wbig-gz.tar"
	X "$t" rmi wbiggz/img:latest >/dev/null
	load_measured load_wfiles "$t" "$W/wfiles.tar"
	X "$t" rmi wfiles/img:latest >/dev/null
	load_measured load_wmany "$t" "$W/wmany.tar"

	local c
	c=$(cmd_of "$t")
	reads images "$t" "$c images"
	reads images_a "$t" "$c images -a"
	reads images_label "$t" "$c images --filter label=bench.group=3"
	reads inspect "$t" "$c inspect $ONE"
	reads history "$t" "$c history $ONE"
	if [[ $t != strata ]]; then
		reads api_images_json "$t" "curl -sf --unix-socket $(sock_of "$t") -o /dev/null http://d/v1.41/images/json"
		# The daemon alone: 10 listings from one curl process over one
		# connection, recorded per request (no curl start-up in it).
		local s e
		s=$(now)
		curl -sf --unix-socket "$(sock_of "$t")" $(for _ in $(seq 10); do printf -- '-o /dev/null http://d/v1.41/images/json '; done)
		e=$(now)
		rec api_images_json_x10 "$t" "$(awk -v a="$s" -v b="$e" 'BEGIN{printf "%.4f", (b-a)/1e10}')"
		reads api_inspect "$t" "curl -sf --unix-socket $(sock_of "$t") -o /dev/null http://d/v1.41/images/$ONE/json"
	fi

	tag_loop() { for ((i = 0; i < NTAG; i++)); do X "$t" tag "wmany/img$i" "bench/t:$i"; done; }
	timed tag_cli "$t" tag_loop
	refs=$(for ((i = 0; i < NTAG; i++)); do printf 'bench/t:%d ' "$i"; done)
	# shellcheck disable=SC2086
	timed untag "$t" X "$t" rmi $refs
	if [[ $t != strata ]]; then
		# The daemon alone: the same 1,000 tags as API calls from one curl
		# process over one connection (no CLI start-up per tag).
		local urls=()
		for ((i = 0; i < NTAG; i++)); do urls+=("http://d/v1.41/images/wmany/img$i/tag?repo=bench/a&tag=$i"); done
		timed tag_api "$t" curl -sf --unix-socket "$(sock_of "$t")" -X POST "${urls[@]}"
		X "$t" rmi $(for ((i = 0; i < NTAG; i++)); do printf 'bench/a:%d ' "$i"; done) >/dev/null
	fi
	refs=$(for ((i = 0; i < NTAG; i++)); do printf 'wmany/img%d ' "$i"; done)
	# shellcheck disable=SC2086
	timed rmi "$t" X "$t" rmi $refs
	X "$t" load -q -i "$W/wdangling.tar" >/dev/null
	timed prune_dangling "$t" X "$t" image prune -f
	empty_store "$t"
}

tools() {
	log "run $run: simple tools"
	sync
	timed tool_sha256 tools openssl dgst -sha256 "$W/wbig.tar"
	rm -f "$D/cp.tar"
	sync
	timed tool_cp_sync tools bash -c "cp '$W/wbig.tar' '$D/cp.tar' && sync"
	rm -f "$D/cp.tar"
	sync
	timed tool_cp tools cp "$W/wbig.tar" "$D/cp.tar"
	rm -f "$D/cp.tar"
	sync
	timed tool_zcat tools bash -c "zcat '$W'/wbig-gz.tar.layers/*.tar.gz >/dev/null"
}

log "load average before: $(cat /proc/loadavg)"
for ((run = 1; run <= RUNS; run++)); do
	# Alternate the order of the targets from run to run.
	case $((run % 3)) in
	1) order="dockerd strata serve" ;;
	2) order="strata serve dockerd" ;;
	0) order="serve dockerd strata" ;;
	esac
	tools
	for t in $order; do suite "$t"; done
done
log "load average after: $(cat /proc/loadavg)"

# --- push / pull (only once a registry client exists in strata) -------------
# PUSH/PULL: runs only if `strata pull --help` works (the registry client is
# being built). Uses Debian's docker-registry on 127.0.0.1:5099 (plain HTTP).
if "$STRATA" pull --help >/dev/null 2>&1 && command -v docker-registry >/dev/null; then
	log "push/pull through a local registry"
	mkdir -p "$D/registry"
	cat >"$D/registry.yml" <<EOF
version: 0.1
storage: { filesystem: { rootdirectory: $D/registry } }
http: { addr: 127.0.0.1:5099 }
EOF
	docker-registry serve "$D/registry.yml" >"$D/registry.log" 2>&1 &
	RPID=$!
	sleep 2
	REG=127.0.0.1:5099
	for ((run = 1; run <= RUNS; run++)); do
		X dockerd load -q -i "$W/wbig.tar" >/dev/null
		X dockerd tag wbig/img:latest "$REG/wbig/d:$run"
		timed push dockerd X dockerd push -q "$REG/wbig/d:$run"
		X dockerd rmi wbig/img:latest "$REG/wbig/d:$run" >/dev/null
		timed pull dockerd X dockerd pull -q "$REG/wbig/d:$run"
		empty_store dockerd
		"$STRATA" --root "$SROOT" load -q -i "$W/wbig.tar" >/dev/null
		"$STRATA" --root "$SROOT" tag wbig/img:latest "$REG/wbig/s:$run"
		timed push strata "$STRATA" --root "$SROOT" push "$REG/wbig/s:$run"
		empty_store strata
		timed pull strata "$STRATA" --root "$SROOT" pull "$REG/wbig/s:$run"
		empty_store strata
		# Each tool above pulls what it pushed; strata's push stores the
		# incompressible chunks, so pull what dockerd pushed as well.
		timed pull_dockerd_push strata "$STRATA" --root "$SROOT" pull "$REG/wbig/d:$run"
		empty_store strata
		if command -v skopeo >/dev/null; then
			timed push skopeo skopeo copy -q --dest-tls-verify=false "docker-archive:$W/wbig.tar" "docker://$REG/wbig/k:$run"
			rm -rf "$D/sk"
			timed pull skopeo skopeo copy -q --src-tls-verify=false "docker://$REG/wbig/k:$run" "dir:$D/sk"
			rm -rf "$D/sk"
		fi
	done
else
	log "push/pull skipped: \`strata pull --help\` does not work yet"
fi

# --- report ----------------------------------------------------------------
med() { # median of target $2's values for op $1, or "-"
	awk -F'\t' -v op="$1" -v t="$2" '$1==op && $2==t {print $3}' "$RES" | sort -g |
		awk '{v[NR]=$1} END {if (NR==0) print "-"; else if (NR%2) print v[(NR+1)/2]; else printf "%.4f\n", (v[NR/2]+v[NR/2+1])/2}'
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN{ if (a=="-"||b=="-"||b==0) print "-"; else printf "%.1fx", a/b }'; }
echo
echo "vs-dockerd: BIG_MIB=$BIG_MIB FILES=$FILES MANY=$MANY NTAG=$NTAG RUNS=$RUNS READS=$READS ($(nproc) cpus, load $(cut -d' ' -f1-3 /proc/loadavg))"
echo "seconds (MiB for *_mib), median; ratio = dockerd / strata target"
printf '%-26s %10s %10s %10s %9s %9s\n' op dockerd strata serve d/strata d/serve
for op in load_wbig load_wbig.maxrss_mib load_wbig_gz load_wbig_gz.maxrss_mib load_wfiles load_wmany load_wmany.maxrss_mib \
	images images_a images_label api_images_json api_images_json_x10 inspect history api_inspect tag_cli tag_api untag rmi prune_dangling save_wbig \
	push pull pull_dockerd_push; do
	d=$(med "$op" dockerd) s=$(med "$op" strata) v=$(med "$op" serve)
	[[ $d$s$v == --- ]] && continue
	printf '%-26s %10s %10s %10s %9s %9s\n' "$op" "$d" "$s" "$v" "$(ratio "$d" "$s")" "$(ratio "$d" "$v")"
done
echo
echo "simple tools on the same bytes (seconds, median):"
for op in tool_sha256 tool_cp tool_cp_sync tool_zcat tool_cat_blobs; do printf '  %-14s %s\n' "$op" "$(med "$op" tools)"; done
for op in push pull; do
	k=$(med "$op" skopeo)
	[[ $k != - ]] && printf '  skopeo %-7s %s\n' "$op" "$k"
done
sha=$(med tool_sha256 tools) cps=$(med tool_cp_sync tools) cp=$(med tool_cp tools) z=$(med tool_zcat tools)
echo
echo "against the simple tools (strata CLI / serve):"
printf '  load W-big / (sha256 + cp+sync): %s / %s   (target <= 1.5x)\n' \
	"$(ratio "$(med load_wbig strata)" "$(awk -v a="$sha" -v b="$cps" 'BEGIN{print a+b}')")" \
	"$(ratio "$(med load_wbig serve)" "$(awk -v a="$sha" -v b="$cps" 'BEGIN{print a+b}')")"
printf '  load W-big-gz / zcat:            %s / %s   (target <= 1.3x)\n' \
	"$(ratio "$(med load_wbig_gz strata)" "$z")" "$(ratio "$(med load_wbig_gz serve)" "$z")"
printf '  save W-big / cp:                 %s / %s   (target <= 1.3x)\n' \
	"$(ratio "$(med save_wbig strata)" "$cp")" "$(ratio "$(med save_wbig serve)" "$cp")"
cb=$(med tool_cat_blobs tools)
printf '  save W-big / cat of its blobs:   %s / %s   (the same bytes from the same files)\n' \
	"$(ratio "$(med save_wbig strata)" "$cb")" "$(ratio "$(med save_wbig serve)" "$cb")"
echo "raw samples: $RES"
