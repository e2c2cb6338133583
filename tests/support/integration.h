#pragma once
// Everything an integration test needs around the real broker and database that
// scripts/services starts, in one include: a fresh database per test (services.h), topics
// (kafka.h), our programs as child processes (processes.h), requests to them (http.h),
// records and events to send (records.h, event_builder.h), checks of what was applied
// (checks.h) and bounded waits (wait.h). docs/TESTING.md shows a new test in a few lines.

#include "tests/support/checks.h"
#include "tests/support/event_builder.h"
#include "tests/support/http.h"
#include "tests/support/kafka.h"
#include "tests/support/processes.h"
#include "tests/support/records.h"
#include "tests/support/services.h"
#include "tests/support/wait.h"
