# Smoke test of train_pix2pix --gan-mode, the flag as a user types it: two
# iterations of a tiny paper model on the facades with lsgan, then with
# wgangp; each run must finish, write a checkpoint and log its objective in
# the start event. An unknown mode must be refused, naming the accepted ones.
#
# This file has two roles:
#   include(gan_mode_smoke.cmake) in tests/CMakeLists.txt registers the test;
#   cmake -DTRAIN=... -DOUTPUT=... -P gan_mode_smoke.cmake runs it from the
#   repository root (the data: $PIXGRAD_DATA, else ../shared/data).

if(NOT CMAKE_SCRIPT_MODE_FILE)
  if(TARGET train_pix2pix)
    add_test(NAME train_pix2pix_gan_modes
             COMMAND ${CMAKE_COMMAND} -DTRAIN=$<TARGET_FILE:train_pix2pix>
                     -DOUTPUT=${CMAKE_CURRENT_BINARY_DIR}/gan_mode_smoke -P ${CMAKE_CURRENT_LIST_FILE}
             WORKING_DIRECTORY ${PROJECT_SOURCE_DIR})
    set_tests_properties(train_pix2pix_gan_modes PROPERTIES LABELS cpu ENVIRONMENT OMP_NUM_THREADS=2 TIMEOUT 300)
  endif()
  return()
endif()

cmake_minimum_required(VERSION 3.25)
foreach(variable TRAIN OUTPUT)
  if(NOT DEFINED ${variable})
    message(FATAL_ERROR "gan_mode_smoke.cmake: pass -D${variable}=...")
  endif()
endforeach()

# As tests/test_paths.h: missing data fail unless this machine has none on purpose.
set(data ../shared/data)
if(DEFINED ENV{PIXGRAD_DATA} AND NOT "$ENV{PIXGRAD_DATA}" STREQUAL "")
  set(data $ENV{PIXGRAD_DATA})
endif()
if(NOT IS_DIRECTORY ${data}/facades/train)
  if("$ENV{PIXGRAD_ALLOW_MISSING_DATA}" STREQUAL "1")
    message(WARNING "no facades at ${data}/facades: not run")
    return()
  endif()
  message(FATAL_ERROR "no facades at ${data}/facades (set PIXGRAD_DATA, or PIXGRAD_ALLOW_MISSING_DATA=1)")
endif()

foreach(mode lsgan wgangp)
  set(run ${OUTPUT}/${mode})
  file(REMOVE_RECURSE ${run})
  execute_process(
    COMMAND ${TRAIN} --dataset ${data}/facades --direction BtoA --device cpu --gan-mode ${mode} --load-size 36
            --crop-size 32 --ngf 8 --ndf 8 --num-downs 5 --workers 1 --max-iterations 2 --log-interval 1
            --preview-count 1 --output ${run}
    RESULT_VARIABLE status
    OUTPUT_VARIABLE output
    ERROR_VARIABLE output)
  if(NOT status EQUAL 0)
    message(FATAL_ERROR "train_pix2pix --gan-mode ${mode} exited with ${status}:\n${output}")
  endif()
  if(NOT EXISTS ${run}/checkpoint.safetensors)
    message(FATAL_ERROR "train_pix2pix --gan-mode ${mode} wrote no checkpoint:\n${output}")
  endif()
  file(STRINGS ${run}/log.jsonl start REGEX "\"event\":\"start\"")
  string(JSON logged ERROR_VARIABLE error GET "${start}" options gan_mode)
  if(error OR NOT logged STREQUAL mode)
    message(FATAL_ERROR "${run}/log.jsonl: the start event logs gan_mode '${logged}' ${error}, not '${mode}'")
  endif()
  file(REMOVE_RECURSE ${run})
endforeach()

execute_process(
  COMMAND ${TRAIN} --dataset ${data}/facades --gan-mode wgan --output ${OUTPUT}/unknown
  RESULT_VARIABLE status
  OUTPUT_VARIABLE output
  ERROR_VARIABLE output)
if(status EQUAL 0 OR NOT output MATCHES "'wgan'.*wgangp")
  message(FATAL_ERROR "train_pix2pix --gan-mode wgan: expected a refusal naming wgangp, got ${status}:\n${output}")
endif()
message(STATUS "train_pix2pix --gan-mode: lsgan and wgangp ran, an unknown mode was refused")
