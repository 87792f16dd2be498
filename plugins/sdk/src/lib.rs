//! The plugin SDK: the C ABI of dynamic plugins and a macro that writes it for you.
