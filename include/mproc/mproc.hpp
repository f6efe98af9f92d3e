#pragma once
// The umbrella header: everything a program needs to run functions in worker processes.

#include <mproc/errors.hpp>
#include <mproc/executor.hpp>
#include <mproc/future.hpp>
#include <mproc/init.hpp>
#include <mproc/initializer.hpp>
#include <mproc/pool.hpp>
#include <mproc/process.hpp>
#include <mproc/queue.hpp>
#include <mproc/serializable.hpp>
#include <mproc/shared_array.hpp>
#include <mproc/start_method.hpp>
#include <mproc/thread_pool.hpp>
