# expect_failure.cmake — runs a command that must fail: passes only if it
# exits 1 and its output (stdout and stderr) contains every expected text.
#
#   cmake -DCOMMAND="prog|arg|arg" -DEXPECT="text|text" -P expect_failure.cmake
#
# -DANY_FAILURE=ON accepts any non-zero exit: under a sanitizer a fault that
# makes calls run twice ends, after the tool's own failure line, in the
# sanitizer's report of the freed record being touched (its own exit code).
#
# -DOR_SANITIZER="text" also accepts a run that a sanitizer ended first with
# a report containing the text: TSan may catch an injected lock-order
# deadlock (its lock-order-inversion report, exit 66) before the tool's own
# hang check does, depending on the interleaving.
#
# '|' separates the items (a ';' would be split by add_test).
string(REPLACE "|" ";" command "${COMMAND}")
string(REPLACE "|" ";" expected "${EXPECT}")
execute_process(COMMAND ${command}
  OUTPUT_VARIABLE out ERROR_VARIABLE err RESULT_VARIABLE rc)
message("${out}")
message("${err}")
if(OR_SANITIZER AND NOT rc EQUAL 0)
  string(FIND "${out}${err}" "${OR_SANITIZER}" caught)
  if(NOT caught EQUAL -1)
    message(STATUS "failed as expected: the sanitizer reported '${OR_SANITIZER}' first")
    return()
  endif()
endif()
if(ANY_FAILURE)
  if(rc EQUAL 0)
    message(FATAL_ERROR "expected a failing exit code, got 0")
  endif()
elseif(NOT rc EQUAL 1)
  message(FATAL_ERROR "expected exit code 1 (FAILURE), got '${rc}'")
endif()
foreach(text IN LISTS expected)
  string(FIND "${out}${err}" "${text}" at)
  if(at EQUAL -1)
    message(FATAL_ERROR "expected the output to contain '${text}'")
  endif()
endforeach()
message(STATUS "failed as expected: exit 1, output has: ${expected}")
