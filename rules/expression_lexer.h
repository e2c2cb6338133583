#pragma once
// The tokens of the `when:` language (rules/expression.h). Internal to the rules module.

#include <cstddef>
#include <string_view>
#include <vector>

namespace fraud::rules::detail {

enum class Tok { end, number, string, name, lparen, rparen, lbracket, rbracket, comma, op };

struct Token {
  Tok kind = Tok::end;
  std::string_view text;  ///< views the expression; a string's text is without its quotes
  std::size_t offset = 0;
};

/// The tokens of `text`, ending with one Tok::end. Throws ExpressionError at an unterminated
/// string or a character the language does not use.
std::vector<Token> tokenize(std::string_view text);

}  // namespace fraud::rules::detail
