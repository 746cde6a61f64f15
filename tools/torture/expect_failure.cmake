# expect_failure.cmake — runs a command that must fail: passes only if it
# exits 1 and its output (stdout and stderr) contains every expected text.
#
#   cmake -DCOMMAND="prog|arg|arg" -DEXPECT="text|text" -P expect_failure.cmake
#
# '|' separates the items (a ';' would be split by add_test).
string(REPLACE "|" ";" command "${COMMAND}")
string(REPLACE "|" ";" expected "${EXPECT}")
execute_process(COMMAND ${command}
  OUTPUT_VARIABLE out ERROR_VARIABLE err RESULT_VARIABLE rc)
message("${out}")
message("${err}")
if(NOT rc EQUAL 1)
  message(FATAL_ERROR "expected exit code 1 (FAILURE), got '${rc}'")
endif()
foreach(text IN LISTS expected)
  string(FIND "${out}${err}" "${text}" at)
  if(at EQUAL -1)
    message(FATAL_ERROR "expected the output to contain '${text}'")
  endif()
endforeach()
message(STATUS "failed as expected: exit 1, output has: ${expected}")
