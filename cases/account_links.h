#pragma once
// Who else used what a case's account used (issue 34): the other accounts that shared its
// cards, devices, IP addresses and payees in a period, each with its decisions, labels and
// open case. The analysts' first question about mule rings and account takeovers.
//
// Bounded, since the history holds months: only the values of the account's latest events in
// the period, each value's latest events, a number of links, and a time budget. Only fields
// the history has an index for (migrations/0024) are searched; the answer names the others.

namespace fraud::cases {

/// What a links query reads.
struct LinkQuery {
  int days = 30;      ///< the period: this many days up to the case's last event (1 to 90)
  int accounts = 50;  ///< at most this many links (an account, a value), the most recently seen first (1 to 200)
};

}  // namespace fraud::cases
