// Theme: light, dark, or whatever the desktop uses. Both are the Fusion style with a palette
// of its own, so every widget (and the Markdown the message delegate paints from the palette)
// is readable in either.
//
// "System" cannot ask Qt 6.4 (QStyleHints::colorScheme arrived in 6.5): it reads the
// desktop's palette as the platform theme gave it at start, then GTK_THEME ("…:dark"), then
// GNOME's org.gnome.desktop.interface color-scheme / gtk-theme through gsettings; light when
// none of them says dark.
#pragma once

#include <QPalette>
#include <QString>

namespace tidelane::ui {

enum class Theme { System, Light, Dark };

QString themeName(Theme theme);  // "system", "light", "dark" (the settings' values)
Theme themeFromName(const QString& name);

bool systemPrefersDark();
QPalette lightPalette();
QPalette darkPalette();
// Applies `theme` to the running application (Fusion style and its palette).
void applyTheme(Theme theme);

}  // namespace tidelane::ui
