# Smoke test of apps/bench_kernels: a CPU run on two tiny --shapes (a conv, a
# transposed conv) plus a tiny batch norm, LeakyReLU and Adam, written with
# --json; fails unless the run succeeds and every record carries every field.
#
# This file has two roles:
#   include(bench_smoke.cmake) in tests/CMakeLists.txt registers the test;
#   cmake -DBENCH_KERNELS=... -DOUTPUT=... -P bench_smoke.cmake runs it
#   (add -DCHECK_ONLY=ON to check an existing OUTPUT without running).

if(NOT CMAKE_SCRIPT_MODE_FILE)
  if(TARGET bench_kernels)
    add_test(NAME bench_kernels_json_smoke
             COMMAND ${CMAKE_COMMAND} -DBENCH_KERNELS=$<TARGET_FILE:bench_kernels>
                     -DOUTPUT=${CMAKE_CURRENT_BINARY_DIR}/bench_kernels_smoke.json
                     -P ${CMAKE_CURRENT_LIST_FILE})
    set_tests_properties(bench_kernels_json_smoke PROPERTIES LABELS cpu ENVIRONMENT OMP_NUM_THREADS=2 TIMEOUT 120)
  endif()
  return()
endif()

cmake_minimum_required(VERSION 3.25)
foreach(variable BENCH_KERNELS OUTPUT)
  if(NOT DEFINED ${variable})
    message(FATAL_ERROR "bench_smoke.cmake: pass -D${variable}=...")
  endif()
endforeach()

if(NOT CHECK_ONLY)
  file(REMOVE ${OUTPUT})
  execute_process(
    COMMAND ${BENCH_KERNELS} --device cpu --presets none --skip-gemm --reps 2 --elements 4096
            --shape conv:1,3,16,16,8,4,2,1 --shape deconv:2,8,8,8,3,4,2,1 --shape bn:2,8,4,4
            --json ${OUTPUT}
    RESULT_VARIABLE status
    OUTPUT_VARIABLE output
    ERROR_VARIABLE output)
  if(NOT status EQUAL 0)
    message(FATAL_ERROR "bench_kernels exited with ${status}:\n${output}")
  endif()
endif()
if(NOT EXISTS ${OUTPUT})
  message(FATAL_ERROR "bench_kernels wrote no ${OUTPUT}:\n${output}")
endif()
file(READ ${OUTPUT} json)

# Fields every record must carry; the second list must also be non-null.
set(fields op layer preset batch pass impl device shape ms gflops gbps percent_of_peak ratio_to_cudnn algorithm math)
set(non_null op layer pass impl device shape ms gbps percent_of_peak)

string(JSON count ERROR_VARIABLE error LENGTH "${json}" records)
if(error)
  message(FATAL_ERROR "${OUTPUT}: no records array (${error})")
endif()
# 2 shapes x 3 passes + batch norm forward/backward + LeakyReLU + Adam.
if(NOT count EQUAL 10)
  message(FATAL_ERROR "${OUTPUT}: expected 10 records, found ${count}:\n${output}")
endif()

math(EXPR last "${count} - 1")
foreach(i RANGE ${last})
  foreach(field ${fields})
    string(JSON type ERROR_VARIABLE error TYPE "${json}" records ${i} ${field})
    if(error)
      message(FATAL_ERROR "${OUTPUT}: record ${i} has no field '${field}'")
    endif()
    if(field IN_LIST non_null AND type STREQUAL "NULL")
      message(FATAL_ERROR "${OUTPUT}: record ${i} has a null '${field}'")
    endif()
  endforeach()
  string(JSON ms GET "${json}" records ${i} ms)
  if(NOT ms GREATER 0)
    message(FATAL_ERROR "${OUTPUT}: record ${i} has ms = ${ms}")
  endif()
  string(JSON op GET "${json}" records ${i} op)
  string(JSON gflops_type TYPE "${json}" records ${i} gflops)
  if(op STREQUAL "conv" AND gflops_type STREQUAL "NULL")
    message(FATAL_ERROR "${OUTPUT}: conv record ${i} has no GFLOP/s")
  endif()
  # A convolution says which algorithm and math ran (the CPU: im2col+gemm, fp32).
  string(JSON math_type TYPE "${json}" records ${i} math)
  if(op STREQUAL "conv" AND math_type STREQUAL "NULL")
    message(FATAL_ERROR "${OUTPUT}: conv record ${i} does not say which math ran")
  endif()
endforeach()
message(STATUS "bench_kernels --json: ${count} records, each with ${fields}")
