// What a batch sends PostgreSQL as text: array literals and JSON. Whatever bytes a producer or
// a rule file put in a value, PostgreSQL must read it back as that value, or a batch fails
// (postgres/array_literal.h, store/sql_text.h).
#include <doctest/doctest.h>

#include "postgres/array_literal.h"
#include "store/sql_text.h"

using fraud::postgres::ArrayLiteral;

TEST_CASE("an array literal quotes every element and escapes quotes and backslashes") {
  ArrayLiteral column;
  column.add(R"(a"b\c)");
  column.add("NULL");  // the text NULL is quoted: only add_null() is the SQL NULL
  column.add_null();
  column.add(std::int64_t{-42});
  CHECK(column.str() == R"({"a\"b\\c","NULL",NULL,-42})");
  CHECK(ArrayLiteral().empty());
}

TEST_CASE("a JSON string array escapes quotes and backslashes and writes control characters as escapes") {
  CHECK(fraud::store::json_string_array({}) == "[]");
  CHECK(fraud::store::json_string_array({"large_amount", "a\"b\\c\x01"}) ==
        "[\"large_amount\",\"a\\\"b\\\\c\\u0001\"]");
}
