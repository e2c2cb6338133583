#pragma once
// The event fields features group history by: one table of their names in rule files (and
// in feature_key_versions), their columns in the stored history, and how each is read from
// an event. Every module that names a key field reads it here.

#include <optional>
#include <string_view>

#include "events/event.h"

namespace fraud::rules {

enum class KeyField {
  account_id,
  customer_id,
  card_fingerprint,
  device_id,
  device_ip,
  merchant_id,
  counterparty_account
};

struct KeyFieldSpec {
  KeyField field;
  std::string_view name;    ///< as rule files write it: card.fingerprint
  std::string_view column;  ///< the history's column (transactions): card_fingerprint
  std::string_view (*read)(const events::Event&);
};

/// Every key field, in declaration order.
inline constexpr KeyFieldSpec kKeyFieldSpecs[] = {
    {KeyField::account_id, "account_id", "account_id",
     [](const events::Event& e) -> std::string_view { return e.account_id; }},
    {KeyField::customer_id, "customer_id", "customer_id",
     [](const events::Event& e) -> std::string_view { return e.customer_id; }},
    {KeyField::card_fingerprint, "card.fingerprint", "card_fingerprint",
     [](const events::Event& e) -> std::string_view { return e.card.fingerprint; }},
    {KeyField::device_id, "device.id", "device_id",
     [](const events::Event& e) -> std::string_view { return e.device.id; }},
    {KeyField::device_ip, "device.ip", "device_ip",
     [](const events::Event& e) -> std::string_view { return e.device.ip; }},
    {KeyField::merchant_id, "merchant.id", "merchant_id",
     [](const events::Event& e) -> std::string_view { return e.merchant.id; }},
    {KeyField::counterparty_account, "counterparty.account", "counterparty_account",
     [](const events::Event& e) -> std::string_view { return e.counterparty.account; }},
};

inline constexpr const KeyFieldSpec& spec_of(KeyField field) { return kKeyFieldSpecs[static_cast<int>(field)]; }

/// The event's value of a key field; empty when the event has none.
inline std::string_view key_of(const events::Event& event, KeyField field) { return spec_of(field).read(event); }

/// The field's name: card.fingerprint.
inline const char* to_string(KeyField field) { return spec_of(field).name.data(); }

/// The key field a rule file or the database names `name`, if any.
inline std::optional<KeyField> key_field_named(std::string_view name) {
  for (const auto& spec : kKeyFieldSpecs)
    if (spec.name == name) return spec.field;
  return std::nullopt;
}

}  // namespace fraud::rules
