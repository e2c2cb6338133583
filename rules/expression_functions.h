#pragma once
// The functions of the `when:` language, as one table: the parser looks a call up here, checks
// its argument count, and lets the function check its arguments and say how it evaluates. The
// "known functions" of an error message and docs/RULES.md's list are this table.

#include <cstddef>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "rules/expression_nodes.h"

namespace fraud::rules::detail {

/// What a call evaluates: its result type and its evaluation over the argument nodes.
struct CallPlan {
  Type type;
  Call::Fn fn;
};

struct Function {
  static constexpr std::size_t kAny = 99;  ///< max_args of a function taking "or more"
  std::string_view name;
  std::size_t min_args, max_args;
  std::string_view usage;  ///< an example call, for error messages
  /// Checks the arguments' types and literals (an ExpressionError at the offending argument,
  /// or at `offset`, the call's) and returns the plan. Checking and making are one step where
  /// they share work: a pattern or a time zone is looked up once, when the rule file loads.
  CallPlan (*compile)(const std::vector<NodePtr>& args, std::size_t offset);
};

std::span<const Function> functions();
const Function* find_function(std::string_view name);
/// "abs, min, max, ...": the table's names in order.
std::string function_names();

}  // namespace fraud::rules::detail
