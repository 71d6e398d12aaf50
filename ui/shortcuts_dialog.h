// ShortcutsDialog: every keyboard shortcut of a window, read from its actual QActions and
// buttons when the dialog opens, so the list can never go stale (Help → Keyboard shortcuts,
// F1 or Ctrl+/).
#pragma once

#include <QDialog>
#include <QKeySequence>
#include <QList>

namespace tidelane::ui {

struct ShortcutEntry {
  QString action;  // the action's text without '&' and '…'
  QKeySequence keys;
};

class ShortcutsDialog : public QDialog {
  Q_OBJECT

 public:
  // The shortcuts of `root` and every widget and action under it (menus included), sorted
  // by action; duplicates once.
  static QList<ShortcutEntry> collect(const QWidget* root);

  explicit ShortcutsDialog(const QWidget* root, QWidget* parent = nullptr);
};

}  // namespace tidelane::ui
