# Runs a libFuzzer target once over every file of its corpus (no fuzzing):
#   cmake -DFUZZER=... -DCORPUS=... -P replay.cmake
file(GLOB inputs ${CORPUS}/*)
list(LENGTH inputs count)
if(count EQUAL 0)
  message(FATAL_ERROR "no inputs in ${CORPUS}")
endif()
execute_process(COMMAND ${FUZZER} ${inputs} RESULT_VARIABLE status OUTPUT_VARIABLE output ERROR_VARIABLE output)
if(NOT status EQUAL 0)
  message(FATAL_ERROR "${FUZZER} failed on the corpus (${status}):\n${output}")
endif()
message(STATUS "${count} corpus inputs replayed without a finding")
