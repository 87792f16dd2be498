//! Client adapter for Thunderbird: profiles.ini, prefs.js and user.js.
