# Smoke test of apps/bench_pix2pix on the CPU: one timed step of the paper
# preset at batch 1 (256x256, the smallest side its 8 downsamplings take),
# no warm-up, then the captured step (--cuda-graph: the CPU stand-in), with
# the batch norms making their own statistics passes (--moments off),
# written with --json; fails unless the run succeeds, prints the CPU's FMA
# ceiling, the RSS column, the moments setting and the captured step's line,
# and its record carries the efficiency, host-memory and captured-step
# fields as numbers in a sane range and the moments setting.
#
# This file has two roles:
#   include(bench_pix2pix_smoke.cmake) in tests/CMakeLists.txt registers the test;
#   cmake -DBENCH_PIX2PIX=... -DOUTPUT=... -P bench_pix2pix_smoke.cmake runs it
#   (add -DCHECK_ONLY=ON to check an existing OUTPUT without running).

if(NOT CMAKE_SCRIPT_MODE_FILE)
  if(TARGET bench_pix2pix)
    add_test(NAME bench_pix2pix_json_smoke
             COMMAND ${CMAKE_COMMAND} -DBENCH_PIX2PIX=$<TARGET_FILE:bench_pix2pix>
                     -DOUTPUT=${CMAKE_CURRENT_BINARY_DIR}/bench_pix2pix_smoke.json
                     -P ${CMAKE_CURRENT_LIST_FILE})
    set_tests_properties(bench_pix2pix_json_smoke PROPERTIES LABELS cpu ENVIRONMENT OMP_NUM_THREADS=2 TIMEOUT 120)
  endif()
  return()
endif()

cmake_minimum_required(VERSION 3.25)
foreach(variable BENCH_PIX2PIX OUTPUT)
  if(NOT DEFINED ${variable})
    message(FATAL_ERROR "bench_pix2pix_smoke.cmake: pass -D${variable}=...")
  endif()
endforeach()

set(output "")
if(NOT CHECK_ONLY)
  file(REMOVE ${OUTPUT})
  execute_process(
    COMMAND ${BENCH_PIX2PIX} --device cpu --presets paper --batch-sizes 1 --size 256 --iterations 1 --warmup 0
            --cuda-graph --moments off --json ${OUTPUT}
    RESULT_VARIABLE status
    OUTPUT_VARIABLE output
    ERROR_VARIABLE output)
  if(NOT status EQUAL 0)
    message(FATAL_ERROR "bench_pix2pix exited with ${status}:\n${output}")
  endif()
  foreach(expected "cpu ceilings: FMA " "FMA %" "RSS MiB" "captured step: " ", moments off, ")
    string(FIND "${output}" "${expected}" at)
    if(at EQUAL -1)
      message(FATAL_ERROR "bench_pix2pix printed no '${expected}':\n${output}")
    endif()
  endforeach()
endif()
if(NOT EXISTS ${OUTPUT})
  message(FATAL_ERROR "bench_pix2pix wrote no ${OUTPUT}:\n${output}")
endif()
file(READ ${OUTPUT} json)

string(JSON count ERROR_VARIABLE error LENGTH "${json}")
if(error)
  message(FATAL_ERROR "${OUTPUT}: not a JSON array of records (${error})")
endif()
if(NOT count EQUAL 1)
  message(FATAL_ERROR "${OUTPUT}: expected 1 record, found ${count}:\n${output}")
endif()

# Each numeric field with the range it must fall in on the CPU. The parameters
# and Adam's state of the paper preset alone take over 850 MiB, so a peak RSS
# below 500 MiB is not this run's (or not in MiB); the step's share of the FMA
# ceiling sits far from both bounds on any CPU this project runs on (and
# would need a ceiling measured 10x too low to pass 1000%).
set(ranges
    seconds_per_iteration 0 1000
    graph_seconds_per_iteration 0 1000
    conv_gflop_per_iteration 1 1000
    fma_ceiling_gflops 0.1 1000000
    percent_of_fma_ceiling 1 1000
    peak_rss_mib 500 65536)
list(LENGTH ranges length)
math(EXPR last "${length} - 1")
foreach(i RANGE 0 ${last} 3)
  math(EXPR low_index "${i} + 1")
  math(EXPR high_index "${i} + 2")
  list(GET ranges ${i} field)
  list(GET ranges ${low_index} low)
  list(GET ranges ${high_index} high)
  string(JSON type ERROR_VARIABLE error TYPE "${json}" 0 ${field})
  if(error)
    message(FATAL_ERROR "${OUTPUT}: the record has no field '${field}'")
  endif()
  if(NOT type STREQUAL "NUMBER")
    message(FATAL_ERROR "${OUTPUT}: '${field}' is ${type}, not a number")
  endif()
  string(JSON value GET "${json}" 0 ${field})
  if(NOT (value GREATER low AND value LESS high))
    message(FATAL_ERROR "${OUTPUT}: '${field}' = ${value}, outside (${low}, ${high})")
  endif()
endforeach()

string(JSON moments ERROR_VARIABLE error GET "${json}" 0 conv_moments)
if(error OR NOT moments STREQUAL "off")
  message(FATAL_ERROR "${OUTPUT}: conv_moments is '${moments}' (expected off, as asked)")
endif()
string(JSON scope ERROR_VARIABLE error GET "${json}" 0 peak_rss_scope)
if(error OR NOT scope MATCHES "^(configuration|process_so_far)$")
  message(FATAL_ERROR "${OUTPUT}: peak_rss_scope is '${scope}' (expected configuration or process_so_far)")
endif()
# The CUDA-only fields are there, and null on the CPU.
foreach(field peak_device_bytes device_bytes_in_use_after graph_nodes)
  string(JSON type ERROR_VARIABLE error TYPE "${json}" 0 ${field})
  if(error OR NOT type STREQUAL "NULL")
    message(FATAL_ERROR "${OUTPUT}: '${field}' should be present and null on the CPU (${type}${error})")
  endif()
endforeach()
string(JSON percent GET "${json}" 0 percent_of_fma_ceiling)
string(JSON rss GET "${json}" 0 peak_rss_mib)
message(STATUS "bench_pix2pix --json: ${percent}% of the FMA ceiling, peak RSS ${rss} MiB (${scope})")
