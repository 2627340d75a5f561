// The shipped dialect tables. Adding a dialect: one file defining its table, one line in
// dialect.cpp's registry.
#pragma once

#include "eftd/acq/dialect.hpp"

namespace eftd::acq::detail {

const dialect& iso87_ascii();
const dialect& iso87_bcd();

}  // namespace eftd::acq::detail
