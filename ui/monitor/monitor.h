#pragma once

// The monitor (ui/monitor), in reading order. Include this for all of it, or one part.
//
// Data, plain values and pure functions (no widgets, unit-tested without a window):
#include "ui/monitor/lane_layout.h"      // layoutLanes: lanes grouped by tier and role -> rects
#include "ui/monitor/lane_scene.h"       // buildLaneScene: levels, colours, particles, arcs, tide
#include "ui/monitor/monitor_frame.h"    // MonitorFrame: one cluster snapshot; interpolate, JSON
#include "ui/monitor/monitor_history.h"  // MonitorHistory: the last 10 minutes, per-second series
// State and transport boundary:
#include "ui/monitor/demo_source.h"     // DemoSource: the surge demo: two clusters, scores, caption
#include "ui/monitor/monitor_model.h"   // MonitorModel: live/paused, scrub, interpolation clock
#include "ui/monitor/monitor_source.h"  // MonitorSource: where frames come from (app/ over gRPC)
// Widgets, which only paint and forward intent:
#include "ui/monitor/demo_window.h"      // DemoWindow: two lane views, scoreboards, presenter
#include "ui/monitor/monitor_charts.h"   // MonitorCharts: Qt Charts of the history
#include "ui/monitor/monitor_window.h"   // MonitorWindow: controls + view + charts
#include "ui/monitor/tidal_lane_view.h"  // TidalLaneView: the lanes, QPainter, 60 fps, zoom
