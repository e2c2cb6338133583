// libFuzzer target: any bytes, as a Kafka record in any envelope, through the decoder.
// Besides not crashing, an accepted record must survive the trip the transaction history
// makes (event -> plain JSON -> event, the source kept in a column of its own) unchanged,
// as events/encode.h promises.
#include <cstdint>
#include <cstdlib>
#include <iostream>

#include "events/decode.h"
#include "events/encode.h"
#include "events/storable_text.h"
#include "fuzz/fuzz_input.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static fraud::events::Decoder decoder;
  static fraud::events::Decoder history_decoder;
  auto record = fraud::fuzz::split_record(data, size);
  auto decoded = decoder.decode(record.view());
  if (!decoded.event) {
    if (decoded.error.empty()) std::abort();  // a rejection always says why
    // ... in text PostgreSQL stores: a reason it refused would cost the batch its speed.
    if (!fraud::events::is_storable_text(decoded.error)) std::abort();
    return 0;
  }
  auto json = fraud::events::to_json(*decoded.event);
  auto again = history_decoder.decode({std::nullopt, {}, json});
  if (again.event) again.event->source = decoded.event->source;  // store/history.cpp does this
  if (!again.event || fraud::events::to_json(*again.event) != json) {
    std::cerr << "history round trip changed the event:\n" << json << "\n" << again.error << "\n";
    std::abort();
  }
  return 0;
}
