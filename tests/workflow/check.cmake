# Validates the GitHub Actions workflow against the Actions schema with action-validator, from
# the npm registry at a pinned version, installed into the build tree.
# Inputs: NPM, WORK_DIR, WORKFLOW.
set(validator "${WORK_DIR}/node_modules/.bin/action-validator")
if(NOT EXISTS "${validator}")
  execute_process(COMMAND "${NPM}" install --no-save --no-audit --no-fund --prefix "${WORK_DIR}"
                          @action-validator/cli@0.6.0
                  RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE out)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "cannot install @action-validator/cli from the npm registry:\n${out}")
  endif()
endif()
execute_process(COMMAND "${validator}" "${WORKFLOW}" RESULT_VARIABLE rc OUTPUT_VARIABLE out
                ERROR_VARIABLE out)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "${WORKFLOW} is not a valid workflow:\n${out}")
endif()
message(STATUS "${WORKFLOW}: valid")
