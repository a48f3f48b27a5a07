// Applies the stored theme before the first paint (a classic script so that it runs early;
// external, as the Content-Security-Policy allows no inline script).
(function () {
  try {
    var theme = localStorage.getItem('llamactl-theme');
    if (theme === 'light' || theme === 'dark') document.documentElement.dataset.theme = theme;
  } catch (e) { /* storage disabled: follow the system */ }
})();
