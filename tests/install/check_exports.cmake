# check_exports.cmake — libxcall.so exports xcall's public API, nothing else,
# and reaches its thread-local state without __tls_get_addr.
#
#   cmake -DLIBRARY=<libxcall.so> -DEXPECTED=<exports.txt> -DSONAME=<soname>
#         -DNM=<nm> -DREADELF=<readelf> -P check_exports.cmake
#
# Fails when
#   - an exported symbol is not xcall's: not in namespace xcall (nor a C
#     function xcall_*: the C API), or in xcall::detail / an anonymous
#     namespace (src/ internals; a std:: template instance leaking out);
#   - the exported C++ symbols differ from EXPECTED, the API the headers
#     promise: one missing (an XCALL_EXPORT lost) or one new (add it to
#     EXPECTED when it is meant to be public API: it is ABI from then on);
#   - the library uses the general- or local-dynamic TLS model (a DTPMOD or
#     TLSDESC relocation, an import of __tls_get_addr), or has no static TLS
#     (initial-exec) at all: docs/design.md, "Shared library";
#   - its SONAME is not SONAME.

cmake_minimum_required(VERSION 3.25)

foreach(var LIBRARY EXPECTED SONAME NM READELF)
  if(NOT DEFINED ${var} OR "${${var}}" STREQUAL "")
    message(FATAL_ERROR "check_exports.cmake: ${var} is not set")
  endif()
endforeach()

set(errors "")
macro(fail text)
  string(APPEND errors "  ${text}\n")
endmacro()

# ---- the dynamic symbol table, mangled and demangled, in the same order -------
function(dynamic_symbols out)
  execute_process(COMMAND ${NM} -D --defined-only --no-sort ${ARGN} "${LIBRARY}"
    OUTPUT_VARIABLE text COMMAND_ERROR_IS_FATAL ANY)
  string(REPLACE ";" "\\;" text "${text}")
  string(REPLACE "\n" ";" lines "${text}")
  set(names "")
  foreach(line IN LISTS lines)
    # "<value> <type> <name>"; a demangled name may hold spaces.
    if(line MATCHES "^[0-9a-fA-F]* *([A-Za-z]) (.*)$")
      if(NOT CMAKE_MATCH_1 STREQUAL "A")  # absolute: version nodes
        list(APPEND names "${CMAKE_MATCH_2}")
      endif()
    endif()
  endforeach()
  set(${out} "${names}" PARENT_SCOPE)
endfunction()

dynamic_symbols(mangled)
dynamic_symbols(demangled --demangle)
list(LENGTH mangled n)
list(LENGTH demangled n2)
if(NOT n EQUAL n2 OR n EQUAL 0)
  message(FATAL_ERROR "check_exports.cmake: nm listed ${n} symbols, demangled ${n2}")
endif()

set(cxx_exports "")
set(c_exports "")
math(EXPR last "${n} - 1")
foreach(i RANGE ${last})
  list(GET mangled ${i} m)
  list(GET demangled ${i} d)
  if(m MATCHES "^xcall_[A-Za-z0-9_]*$")
    list(APPEND c_exports "${m}")  # the C API
  elseif(m MATCHES "^(_init|_fini)$")
    # the ELF initialiser and finaliser of every shared library
  elseif(d MATCHES "^((typeinfo|typeinfo name|vtable) for )?xcall::"
         AND NOT d MATCHES "^[^(]*xcall::(detail|internal|\\(anonymous namespace\\))::")
    list(APPEND cxx_exports "${d}")
  else()
    fail("not xcall's public API: ${d}  (${m})")
  endif()
endforeach()

# ---- against the headers' promise ----------------------------------------------
file(STRINGS "${EXPECTED}" expected REGEX "^[^#]" ENCODING UTF-8)
list(SORT cxx_exports)
list(SORT expected)
foreach(sym IN LISTS expected)
  if(NOT sym IN_LIST cxx_exports)
    fail("missing (not exported, or not defined): ${sym}")
  endif()
endforeach()
foreach(sym IN LISTS cxx_exports)
  if(NOT sym IN_LIST expected)
    fail("exported but not in ${EXPECTED}: ${sym}")
  endif()
endforeach()

# ---- thread-local storage: initial-exec only ------------------------------------
execute_process(COMMAND ${READELF} -rW "${LIBRARY}"
  OUTPUT_VARIABLE relocs COMMAND_ERROR_IS_FATAL ANY)
string(REGEX MATCHALL "R_[A-Z0-9_]*(DTPMOD|TLSDESC|TLSGD|TLSLD)[A-Z0-9_]*" dynamic_tls "${relocs}")
if(dynamic_tls)
  list(REMOVE_DUPLICATES dynamic_tls)
  fail("dynamic TLS model relocations (general/local-dynamic): ${dynamic_tls}")
endif()
execute_process(COMMAND ${NM} -D --undefined-only "${LIBRARY}"
  OUTPUT_VARIABLE undefined COMMAND_ERROR_IS_FATAL ANY)
if(undefined MATCHES "__tls_get_addr")
  fail("imports __tls_get_addr: some thread_local is not initial-exec")
endif()
execute_process(COMMAND ${READELF} -dW "${LIBRARY}"
  OUTPUT_VARIABLE dynamic COMMAND_ERROR_IS_FATAL ANY)
if(NOT dynamic MATCHES "STATIC_TLS")
  fail("no STATIC_TLS flag: the thread context is not initial-exec (or is gone)")
endif()
if(NOT dynamic MATCHES "Library soname: \\[${SONAME}\\]")
  fail("SONAME is not ${SONAME}")
endif()

list(LENGTH cxx_exports ncxx)
list(LENGTH c_exports nc)
if(errors)
  message(FATAL_ERROR "${LIBRARY}:\n${errors}")
endif()
message(STATUS "${LIBRARY}: ${ncxx} C++ and ${nc} C symbols exported, all public API; "
               "TLS initial-exec only; SONAME ${SONAME}")
