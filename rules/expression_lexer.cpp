#include "rules/expression_lexer.h"

#include <cctype>
#include <string>

#include "rules/expression.h"

namespace fraud::rules::detail {

namespace {

bool is_name_char(char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '.'; }

}  // namespace

std::vector<Token> tokenize(std::string_view s) {
  std::vector<Token> out;
  std::size_t i = 0;
  while (i < s.size()) {
    char c = s[i];
    if (std::isspace(static_cast<unsigned char>(c))) {
      ++i;
      continue;
    }
    std::size_t start = i;
    if (std::isdigit(static_cast<unsigned char>(c))) {
      while (i < s.size() && (std::isdigit(static_cast<unsigned char>(s[i])) || s[i] == '.')) ++i;
      out.push_back({Tok::number, s.substr(start, i - start), start});
    } else if (c == '\'' || c == '"') {
      auto close = s.find(c, i + 1);
      if (close == std::string_view::npos) throw ExpressionError("unterminated string", start);
      out.push_back({Tok::string, s.substr(start + 1, close - start - 1), start});
      i = close + 1;
    } else if (std::isalpha(static_cast<unsigned char>(c)) || c == '_') {
      while (i < s.size() && is_name_char(s[i])) ++i;
      out.push_back({Tok::name, s.substr(start, i - start), start});
    } else if (std::string_view("()[],").find(c) != std::string_view::npos) {
      static constexpr Tok kinds[] = {Tok::lparen, Tok::rparen, Tok::lbracket, Tok::rbracket, Tok::comma};
      out.push_back({kinds[std::string_view("()[],").find(c)], s.substr(i, 1), start});
      ++i;
    } else {
      for (std::string_view op : {"==", "!=", "<=", ">=", "<", ">", "+", "-", "*", "/"})
        if (s.substr(i).starts_with(op)) {
          out.push_back({Tok::op, s.substr(i, op.size()), start});
          i += op.size();
          break;
        }
      if (i == start) throw ExpressionError(std::string("unexpected character '") + c + "'", start);
    }
  }
  out.push_back({Tok::end, {}, s.size()});
  return out;
}

}  // namespace fraud::rules::detail
