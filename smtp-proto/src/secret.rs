//! [`Secret`]: a value whose `Debug` and `Display` never show it. (Helper D implements.)
