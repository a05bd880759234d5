# Runs gdb in batch mode on GDB_TARGET with GDB_SCRIPT loaded, stops in
# gdb_stop_here, and checks what `info goroutines` and `goroutine N bt` say.
# (LeakSanitizer cannot run under ptrace: it is turned off for the target.)
find_program(GDB gdb)
if(NOT GDB)
  message("gdb not found: skipped")
  cmake_language(EXIT 77)
endif()
execute_process(
  COMMAND ${GDB} -nx -batch -x ${GDB_SCRIPT}
    -ex "set pagination off" -ex "set environment ASAN_OPTIONS=detect_leaks=0"
    -ex "break gdb_stop_here" -ex run
    -ex "info goroutines" -ex "goroutine 2 bt" -ex "goroutine 3 bt" -ex "goroutine 1 bt" -ex "goroutine 4 bt"
    -ex "info goroutines" -ex continue
    ${GDB_TARGET}
  OUTPUT_VARIABLE out ERROR_VARIABLE err RESULT_VARIABLE rc TIMEOUT 100)
message("${out}")
if(err)
  message("stderr: ${err}")
endif()
foreach(want
    "goroutine 1 \\[running\\], main"
    "goroutine 2 \\[chan receive\\]  [a-z_]+ \\(0x"
    "goroutine 3 \\[chan receive\\], locked to thread, dedicated thread  [a-z_]+ \\(0x"
    "in parked_in_receive .*in worker"
    "gdb_stop_here \\(\\) at"
    "goroutine 4 \\[runnable\\]  not started, will run not_started_yet"
    "not started yet: no stack to show; it will run not_started_yet"
    "gdb_target: done")
  if(NOT out MATCHES "${want}")
    message(FATAL_ERROR "gort-gdb.py: output lacks /${want}/")
  endif()
endforeach()
