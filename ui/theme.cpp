#include "ui/theme.h"

#include <QApplication>
#include <QProcess>
#include <QStandardPaths>
#include <QStyle>
#include <QStyleFactory>

namespace tidelane::ui {
namespace {

// The palette the platform gave before any theme was applied (what "System" means).
const QPalette& platformPalette() {
  static const QPalette palette = QApplication::palette();
  return palette;
}

QString gsettings(const QString& key) {
  const QString exe = QStandardPaths::findExecutable(QStringLiteral("gsettings"));
  if (exe.isEmpty()) return {};
  QProcess p;
  p.start(exe, {QStringLiteral("get"), QStringLiteral("org.gnome.desktop.interface"), key});
  if (!p.waitForFinished(1000)) {
    p.kill();
    p.waitForFinished(500);
    return {};
  }
  return QString::fromUtf8(p.readAllStandardOutput()).trimmed();
}

}  // namespace

QString themeName(Theme theme) {
  switch (theme) {
    case Theme::Light:
      return QStringLiteral("light");
    case Theme::Dark:
      return QStringLiteral("dark");
    case Theme::System:
      break;
  }
  return QStringLiteral("system");
}

Theme themeFromName(const QString& name) {
  if (name == QLatin1String("light")) return Theme::Light;
  if (name == QLatin1String("dark")) return Theme::Dark;
  return Theme::System;
}

bool systemPrefersDark() {
  const QPalette& p = platformPalette();
  if (p.color(QPalette::Window).lightness() < p.color(QPalette::WindowText).lightness()) {
    return true;
  }
  if (qEnvironmentVariable("GTK_THEME").endsWith(QLatin1String(":dark"), Qt::CaseInsensitive)) {
    return true;
  }
  if (gsettings(QStringLiteral("color-scheme")).contains(QLatin1String("dark"))) return true;
  return gsettings(QStringLiteral("gtk-theme"))
      .contains(QLatin1String("dark"), Qt::CaseInsensitive);
}

QPalette lightPalette() {
  QStyle* fusion = QStyleFactory::create(QStringLiteral("Fusion"));
  QPalette p = fusion ? fusion->standardPalette() : QPalette();
  delete fusion;
  p.setColor(QPalette::AlternateBase, QColor(0xee, 0xf2, 0xf7));  // user messages
  p.setColor(QPalette::Link, QColor(0x1a, 0x5f, 0xb4));
  return p;
}

QPalette darkPalette() {
  QPalette p;
  const QColor window(0x2b, 0x2d, 0x31);
  const QColor base(0x1e, 0x1f, 0x22);
  const QColor text(0xe6, 0xe6, 0xe6);
  const QColor disabled(0x80, 0x80, 0x80);
  p.setColor(QPalette::Window, window);
  p.setColor(QPalette::WindowText, text);
  p.setColor(QPalette::Base, base);
  p.setColor(QPalette::AlternateBase, QColor(0x2f, 0x35, 0x40));
  p.setColor(QPalette::ToolTipBase, window);
  p.setColor(QPalette::ToolTipText, text);
  p.setColor(QPalette::PlaceholderText, QColor(0x9a, 0x9a, 0x9a));
  p.setColor(QPalette::Text, text);
  p.setColor(QPalette::Button, window);
  p.setColor(QPalette::ButtonText, text);
  p.setColor(QPalette::BrightText, QColor(0xff, 0x6b, 0x6b));
  p.setColor(QPalette::Light, QColor(0x3c, 0x3f, 0x44));
  p.setColor(QPalette::Midlight, QColor(0x35, 0x37, 0x3c));
  p.setColor(QPalette::Mid, QColor(0x4a, 0x4d, 0x52));
  p.setColor(QPalette::Dark, QColor(0x18, 0x19, 0x1b));
  p.setColor(QPalette::Shadow, Qt::black);
  p.setColor(QPalette::Highlight, QColor(0x3d, 0x7e, 0xdb));
  p.setColor(QPalette::HighlightedText, Qt::white);
  p.setColor(QPalette::Link, QColor(0x7c, 0xb7, 0xff));
  p.setColor(QPalette::LinkVisited, QColor(0xb3, 0x9d, 0xff));
  for (auto role : {QPalette::WindowText, QPalette::Text, QPalette::ButtonText}) {
    p.setColor(QPalette::Disabled, role, disabled);
  }
  return p;
}

void applyTheme(Theme theme) {
  platformPalette();  // remember the desktop's own before the first change
  const bool dark = theme == Theme::Dark || (theme == Theme::System && systemPrefersDark());
  QApplication::setStyle(QStringLiteral("Fusion"));
  QApplication::setPalette(dark ? darkPalette() : lightPalette());
}

}  // namespace tidelane::ui
