# xcallBuildOptions.cmake — warnings and sanitizers as options, applied per
# target by xcall_apply_build_options(). Everything here is PRIVATE (or, for
# the library's sanitizer link flags, BUILD_INTERFACE only), so none of it
# reaches the installed xcall::xcall interface.

include_guard(GLOBAL)

option(XCALL_WARNINGS "Compile xcall's own targets with -Wall -Wextra -Wpedantic -Wshadow"
       ${PROJECT_IS_TOP_LEVEL})
option(XCALL_WERROR "Treat warnings as errors (needs XCALL_WARNINGS)" OFF)
option(XCALL_FAULT_INJECTION
       "Also build xcall_fault_injection (named faults for tests; never installed)" OFF)
set(XCALL_SANITIZE "" CACHE STRING
    "Sanitizers for every xcall target: empty, address,undefined or thread")
set_property(CACHE XCALL_SANITIZE PROPERTY STRINGS "" "address,undefined" "thread")

if(XCALL_SANITIZE MATCHES "thread" AND XCALL_SANITIZE MATCHES "address")
  message(FATAL_ERROR "XCALL_SANITIZE: thread cannot be combined with address")
endif()

# xcall_apply_build_options(<target>)
#   Adds the warning and sanitizer flags chosen above to <target>.
function(xcall_apply_build_options target)
  if(XCALL_WARNINGS)
    target_compile_options(${target} PRIVATE
      $<$<CXX_COMPILER_ID:GNU,Clang,AppleClang>:-Wall -Wextra -Wpedantic -Wshadow>
      $<$<AND:$<BOOL:${XCALL_WERROR}>,$<CXX_COMPILER_ID:GNU,Clang,AppleClang>>:-Werror>)
  endif()

  if(NOT XCALL_SANITIZE STREQUAL "")
    set(flags -fsanitize=${XCALL_SANITIZE} -fno-omit-frame-pointer)
    if(XCALL_SANITIZE MATCHES "undefined")
      # A UB report fails the test even when UBSAN_OPTIONS is not set.
      list(APPEND flags -fno-sanitize-recover=undefined)
    endif()
    target_compile_options(${target} PRIVATE ${flags})
    if(XCALL_SANITIZE MATCHES "thread" AND CMAKE_CXX_COMPILER_ID STREQUAL "GNU"
       AND CMAKE_CXX_COMPILER_VERSION VERSION_GREATER_EQUAL 12)
      # GCC 12 warns (-Wtsan) that TSan does not model atomic_thread_fence.
      # The fences stay correct in the code; TSan just cannot see the edges
      # they create, so fence-only synchronization may need an annotation.
      target_compile_options(${target} PRIVATE -Wno-tsan)
    endif()

    get_target_property(type ${target} TYPE)
    if(type STREQUAL "STATIC_LIBRARY" OR type STREQUAL "OBJECT_LIBRARY")
      # Link flags of a static library only matter to whoever links it: hand
      # them on inside this build tree, never to an installed consumer.
      target_link_options(${target} INTERFACE
        $<BUILD_INTERFACE:-fsanitize=${XCALL_SANITIZE}>)
    else()
      target_link_options(${target} PRIVATE -fsanitize=${XCALL_SANITIZE})
    endif()
  endif()
endfunction()
