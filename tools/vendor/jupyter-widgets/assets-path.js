// Tell the widget bundle (embed.js, next to this file) where its fonts are: this folder.
window.__jupyter_widgets_assets_path__ = document.currentScript.src.replace(/[^/]*$/, "");
