# Sourced by the guest suites that carry test/vm/tests/kexec-workload.py
# across a dump, a kexec or a restore: their verdicts and how they ask the
# workload for its state. The caller sets REP (the workload's report file)
# and may set ASK_TRIES (tenths of a second to wait for a report).
fails=0
pass() { echo "PASS $*"; }
fail() { echo "FAIL $*"; fails=$((fails + 1)); }

# ask PID for a report; prints it ("COUNTER CRC ok|BAD MIB"), empty if none
ask() {
	rm -f "$REP"
	kill -USR1 "$1" 2>/dev/null || return 0
	for _ in $(seq "${ASK_TRIES:-600}"); do [ -s "$REP" ] && break; sleep 0.1; done
	cat "$REP" 2>/dev/null
}

# intact WHAT PID CRC: running, memory matches, counter moved on
intact() {
	local r1 r2
	r1=$(ask "$2"); sleep 0.3; r2=$(ask "$2")
	set -- "$1" "$2" "$3" $r1 $r2
	if [ $# = 11 ] && [ "$5" = "$3" ] && [ "$6" = ok ] && [ "${10}" = ok ] && [ "$8" -gt "$4" ]; then
		pass "$1: running, $7 MiB intact, counter $4 -> $8"
	else
		fail "$1: state '${*:4}' (want crc $3, ok, counter moving)"
	fi
}

# start_workload MIB [TRIES]: the workload ($WL) on MIB MiB, in its own
# session, far from the pids the next boot uses before the restore; sets
# pid, and cnt and crc from its first report (TRIES tenths of a second).
start_workload() {
	echo 30000 > /proc/sys/kernel/ns_last_pid
	rm -f "$REP"
	setsid python3 "$WL" "$1" "$REP" </dev/null >/dev/null 2>&1 &
	pid=$!
	for _ in $(seq "${2:-1200}"); do [ -s "$REP" ] && break; sleep 0.1; done
	read -r cnt crc _ < "$REP" || { echo "FAIL workload did not start"; exit 1; }
	echo "workload pid $pid, $1 MiB, crc $crc"
}
