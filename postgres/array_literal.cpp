#include "postgres/array_literal.h"

namespace fraud::postgres {

void ArrayLiteral::add(std::string_view value) {
  separate();
  text_ += '"';
  for (char c : value) {
    if (c == '"' || c == '\\') text_ += '\\';
    text_ += c;
  }
  text_ += '"';
}

void ArrayLiteral::add(std::int64_t value) {
  separate();
  text_ += std::to_string(value);
}

void ArrayLiteral::add_null() {
  separate();
  text_ += "NULL";
}

}  // namespace fraud::postgres
